"""The one MQTT helper every OpenShelf process uses.

It connects with the device's own credentials, announces ``online`` on its
retained status topic with a Last Will saying ``offline``, reconnects with a
backoff capped at a few seconds, replays its subscriptions after every
reconnect, validates every inbound payload against the contract model before a
handler sees it, drops duplicates (QoS 1 may deliver twice) and expired
commands, and keeps counters of all of that.

Handlers run on the MQTT network thread and must be quick; asyncio services
wrap them with :func:`to_loop`, or drive the link from their event loop
(:meth:`MqttLink.start_on_loop`), which then runs the handlers itself.

The network thread is tuned for many small messages under GIL contention (see
``openshelf.mqtt_socket.LowLatencyClient``): every socket call releases the GIL, and in a busy
process each release may cost a whole switch interval before the thread gets it
back, so the fewer system calls per message the steadier the latency.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
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
from openshelf.mqtt_loop import LoopDriver
from openshelf.mqtt_socket import LowLatencyClient
from openshelf.site import BrokerSettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
Handler = Callable[[TopicParts, M], None]

# Called with (topic, exception) whenever a handler raises. Tests append a hook that
# fails the test, so an exception swallowed here can never pass unnoticed.
HANDLER_ERROR_HOOKS: list[Callable[[str, BaseException], None]] = []

_DEDUP_WINDOW = 8192
_QOS = 1
_ROUTE_CACHE_SIZE = 4096  # topics seen (a site has a few per device); cleared when full or on subscribe


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
        # topic → (subscription, parsed topic): matching a filter costs ~12 us per filter, and a
        # device sees the same few topics all day
        self._routes: dict[str, tuple[_Subscription[Any] | None, TopicParts | str]] = {}  # str: why not ours
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self._session_up = False  # guarded by _lock: subscriptions made now reach the broker
        self._replay_mid: int | None = None  # guarded by _lock: the SUBSCRIBE that "connected" waits for
        self.stats = LinkStats()
        self._started = False
        self._driver: LoopDriver | None = None
        self._client = self._build_client(username, password)

    # ------------------------------------------------------------------ setup

    def _build_client(self, username: str | None, password: str | None) -> paho.Client:
        client = LowLatencyClient(
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
        client.on_subscribe = self._on_subscribe
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

    def start_on_loop(self) -> None:
        """Run the network I/O on the running asyncio loop instead of a thread of its own.

        Handlers then run on the loop itself: no thread hand-over, no GIL passed back
        and forth per message, one ``epoll`` for every link of the process. Connecting
        (TCP, TLS) happens in the loop's default executor; reads, writes and keepalives
        on the loop; a lost connection is re-established with the same capped backoff.
        ``publish`` may still be called from any thread. Stop with ``await aclose()``.
        """
        if self._started:
            raise MqttLinkError("link already started")
        driver = LoopDriver(self, self._client, self._broker)  # raises unless called on a running loop
        self._started = True
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=self._broker.keepalive_s)
        self._driver = driver
        driver.start()

    async def aclose(self) -> None:
        """:meth:`stop` without blocking the loop (for a link started with :meth:`start_on_loop`)."""
        if self._driver is None:
            await asyncio.to_thread(self.stop)
            return
        if not self._started:
            return
        if self._status_topic and self.connected.is_set():
            info = self._client.publish(
                self._status_topic, DeviceStatus(online=False).model_dump_json(), qos=_QOS, retain=True
            )
            deadline = time.monotonic() + 2.0
            while not info.is_published() and self.connected.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        self._started = False
        await self._driver.close()
        self.connected.clear()

    def stop(self) -> None:
        """Say ``offline`` (a clean stop does not fire the Last Will) and disconnect."""
        if not self._started:
            return
        if self._driver is not None:
            if self._driver.on_loop_thread():
                raise MqttLinkError("on its own loop, stop the link with `await link.aclose()`")
            asyncio.run_coroutine_threadsafe(self.aclose(), self._driver.loop).result(10)
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

    def publish(self, topic_name: str, message: Message, *, retain: bool = False) -> paho.MQTTMessageInfo | None:
        """Queue ``message`` (QoS 1). None only for a loop-driven link published to from another thread."""
        payload = message.model_dump_json()
        self.stats.published += 1
        if self._driver is not None and not self._driver.on_loop_thread():
            self._driver.loop.call_soon_threadsafe(self._client.publish, topic_name, payload, _QOS, retain)
            return None
        return self._client.publish(topic_name, payload, qos=_QOS, retain=retain)

    def subscribe(self, topic_filter: str, model: type[M], handler: Handler[M]) -> None:
        """Deliver every valid ``model`` published on ``topic_filter`` to ``handler``.

        Subscriptions are remembered and replayed after each reconnect.
        """
        with self._lock:
            self._subscriptions[topic_filter] = _Subscription(topic_filter, model, handler)
            self._routes.clear()
            session_up = self._session_up
        if not session_up:
            return
        if self._driver is not None and not self._driver.on_loop_thread():
            self._driver.loop.call_soon_threadsafe(self._client.subscribe, topic_filter, _QOS)
        else:
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
        if self._status_topic:
            client.publish(self._status_topic, DeviceStatus(online=True).model_dump_json(), qos=_QOS, retain=True)
        if not filters:
            self.connected.set()
            return
        # A broker that restarted without persistence forgot our session: "connected" waits for the
        # SUBACK, so nothing published after it can miss us (one SUBSCRIBE for every filter).
        result, mid = client.subscribe([(topic_filter, _QOS) for topic_filter in filters])
        with self._lock:
            self._replay_mid = mid if result == paho.MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        refused = [code for code in reason_codes if getattr(code, "is_failure", False)]
        if refused:
            log.warning("broker refused %d subscription(s) of %s (check its ACL): %s", len(refused), self._client_id,
                        ", ".join(str(code) for code in refused))
        with self._lock:
            replayed = mid == self._replay_mid
            if replayed:
                self._replay_mid = None
        if replayed:
            self.connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was_connected = self.connected.is_set()
        with self._lock:
            self._session_up = False
            self._replay_mid = None
        self.connected.clear()
        if was_connected and self._started:  # not while stop() is disconnecting
            log.warning("lost broker connection (%s); reconnecting", reason_code)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self.stats.received += 1
        subscription, parts = self._route(msg.topic)
        if subscription is None:
            return
        try:
            if isinstance(parts, str):
                raise TopicError(parts)
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

    def _route(self, topic_name: str) -> tuple[_Subscription[Any] | None, TopicParts | str]:
        with self._lock:
            route = self._routes.get(topic_name)
            if route is not None:
                return route
            subscription = next((candidate for topic_filter, candidate in self._subscriptions.items()
                                 if paho.topic_matches_sub(topic_filter, topic_name)), None)
            try:
                parts: TopicParts | str = parse_topic(topic_name)
            except TopicError as exc:
                parts = str(exc)
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[topic_name] = route = (subscription, parts)
            return route

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
