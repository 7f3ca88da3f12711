"""The broker socket as OpenShelf's MQTT client uses it: fewer system calls per message.

Every socket call releases the GIL, and in a busy process each release may cost a
whole switch interval before the network thread gets it back, so the fewer calls per
message the steadier the latency. ``LowLatencyClient`` is paho's client with its socket
wrapped: reads served from one large ``recv``, packets written in one pass sent
together, and no wake-up byte written to itself from its own network thread.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any, Callable

import paho.mqtt.client as paho

log = logging.getLogger("openshelf.mqtt")

RECV_CHUNK = 65536
MAX_PACKETS_PER_READ = 256  # bounded: a flood must not keep the thread from its keepalive and writes


class BufferedSocket:
    """The broker socket with reads served from one large ``recv`` and writes sent together.

    paho reads every packet with three or more ``recv`` calls (command byte, each
    length byte, body) and sends every packet with its own ``send``; here one system
    call fetches whatever the kernel holds, and the packets paho writes in one pass
    (the PUBACKs of a batch of messages, say) leave in one ``send`` when the client
    flushes. ``pending()`` tells paho's loop (which asks TLS sockets the same) that
    buffered bytes are waiting, so it does not block in ``select`` on them.
    Everything else is the socket's own.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = memoryview(b"")
        self._outgoing = bytearray()

    def recv(self, size: int) -> bytes:
        if not self._buffer:
            data = self._sock.recv(max(size, RECV_CHUNK))  # BlockingIOError and b"" (closed) pass through
            if len(data) <= size:
                return data
            self._buffer = memoryview(data)
        chunk = bytes(self._buffer[:size])
        self._buffer = self._buffer[size:]
        return chunk

    def send(self, data: bytes | bytearray) -> int:
        self._outgoing += data
        return len(data)

    def flush(self) -> None:
        """Send what is buffered; what the kernel does not take now waits for the next flush.
        Raises OSError when the connection is gone."""
        while self._outgoing:
            try:
                sent = self._sock.send(self._outgoing)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            del self._outgoing[:sent]

    def buffered(self) -> int:
        return len(self._buffer)

    def outgoing(self) -> int:
        return len(self._outgoing)

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._buffer) + (inner() if inner is not None else 0)

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def close(self) -> None:
        try:  # paho closes right after "writing" DISCONNECT: it must still leave, or the Last Will fires
            self.flush()
        except OSError:
            pass
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class WakeSocket:
    """paho's wake-up pipe, silent when the network thread wakes itself.

    paho writes a byte to it for every packet it queues (each PUBACK too), to break
    the network thread out of ``select``. The network thread's own packets need no
    wake-up: its next pass sees them through ``want_write``.
    """

    def __init__(self, sock: Any, network_thread: Callable[[], threading.Thread | None]) -> None:
        self._sock = sock
        self._network_thread = network_thread

    def send(self, data: bytes) -> int:
        if threading.current_thread() is self._network_thread():
            return len(data)
        return int(self._sock.send(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class LowLatencyClient(paho.Client):
    """paho's client with fewer system calls per message: buffered reads, writes sent together,
    no self wake-ups, every buffered packet handled in one pass. The MQTT behaviour is paho's own."""

    @property  # type: ignore[override]
    def _sockpairW(self) -> Any:
        return self.__dict__.get("_wake_socket")

    @_sockpairW.setter
    def _sockpairW(self, sock: Any) -> None:
        self.__dict__["_wake_socket"] = None if sock is None else WakeSocket(sock, lambda: self._thread)

    def _create_socket(self) -> Any:
        return BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> paho.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        for _ in range(MAX_PACKETS_PER_READ):
            sock = self._sock
            if rc != paho.MQTTErrorCode.MQTT_ERR_SUCCESS or not isinstance(sock, BufferedSocket) \
                    or not sock.buffered():
                break
            if self._out_packet and self._out_packet[-1]["command"] & 0xF0 == paho.PUBLISH:
                rc = self.loop_write()  # a handler published (an alarm command, say): it leaves now
                if rc != paho.MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            rc = super().loop_read(max_packets)
        return rc

    def loop_write(self) -> paho.MQTTErrorCode:
        rc = super().loop_write()
        sock = self._sock
        if rc == paho.MQTTErrorCode.MQTT_ERR_SUCCESS and isinstance(sock, BufferedSocket):
            try:
                sock.flush()
            except OSError as exc:
                log.debug("send to broker failed: %s", exc)
                return self._loop_rc_handle(paho.MQTTErrorCode.MQTT_ERR_CONN_LOST)
            # paho decided about write interest before the flush; tell it again now
            if self.want_write():
                self._call_socket_register_write()
            else:
                self._call_socket_unregister_write()
        return rc

    def want_write(self) -> bool:
        sock = self._sock
        return super().want_write() or (isinstance(sock, BufferedSocket) and sock.outgoing() > 0)
