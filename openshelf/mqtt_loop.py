"""Driving an ``MqttLink``'s paho client from an asyncio loop instead of a network thread."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from typing import TYPE_CHECKING, Any, Callable

import paho.mqtt.client as paho

from openshelf.mqtt_socket import BufferedSocket
from openshelf.site import BrokerSettings

if TYPE_CHECKING:
    from openshelf.mqtt import MqttLink

log = logging.getLogger("openshelf.mqtt")


class LoopDriver:
    """Drives one paho client from an asyncio loop: paho's "external event loop" interface.

    paho reports the socket (``on_socket_open``/``close``) and when it has something to
    write (``on_socket_register_write``); the loop calls ``loop_read``/``loop_write`` when
    the socket is ready and ``loop_misc`` every second (keepalive). paho calls those hooks
    from the executor thread during ``reconnect()``: they hop to the loop.
    """

    def __init__(self, link: MqttLink, client: paho.Client, broker: BrokerSettings) -> None:
        self.loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._link = link
        self._client = client
        self._broker = broker
        self._fd: int | None = None
        self._flush_pending = False
        self._writer_added = False
        self._socket_gone = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def start(self) -> None:
        client = self._client
        opened = client.on_socket_open
        if opened is None:
            raise RuntimeError("the client has no socket-open hook")  # a programming error, not a link fault

        def on_open(c: paho.Client, userdata: Any, sock: Any) -> None:
            opened(c, userdata, sock)
            self._on_loop(self._watch, sock.fileno())

        client.on_socket_open = on_open
        client.on_socket_close = lambda c, userdata, sock: self._on_loop(self._unwatch)
        client.on_socket_register_write = lambda c, userdata, sock: self._on_loop(self._want_write)
        client.on_socket_unregister_write = lambda c, userdata, sock: self._on_loop(self._no_write)
        self._task = self.loop.create_task(self._run(), name=f"mqtt-{self._link._client_id}")

    async def close(self) -> None:
        self._stopping = True
        self._client.disconnect()  # DISCONNECT leaves through loop_write, then paho closes the socket
        if self._fd is not None:
            try:
                await asyncio.wait_for(self._socket_gone.wait(), 2.0)
            except TimeoutError:
                log.debug("broker did not see our DISCONNECT in time")
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._close_socket()  # never connected cleanly, or the DISCONNECT did not get out

    def _close_socket(self) -> None:
        if self._client.socket() is not None:
            self._client._sock_close()  # noqa: SLF001 - paho has no public close; it calls on_socket_close
        self._unwatch()

    def _on_loop(self, action: Callable[..., None], *args: Any) -> None:
        if self.on_loop_thread():
            action(*args)
        else:
            self.loop.call_soon_threadsafe(action, *args)

    def _watch(self, fd: int) -> None:
        if self._stopping:  # a connect that finished after close() began
            self._close_socket()
            return
        self._fd = fd
        self._socket_gone.clear()
        self.loop.add_reader(fd, self._readable)
        if self._client.want_write():
            self._want_write()

    def _readable(self) -> None:
        self._client.loop_read()
        sock = self._client.socket()
        if isinstance(sock, BufferedSocket) and sock.pending() > 0:
            # bytes already read from the kernel (or held by TLS) raise no epoll event: come back for them
            self.loop.call_soon(self._readable)

    def _unwatch(self) -> None:
        if self._fd is None:
            return
        self.loop.remove_reader(self._fd)
        if self._writer_added:
            self.loop.remove_writer(self._fd)
            self._writer_added = False
        self._fd = None
        self._socket_gone.set()

    def _want_write(self) -> None:
        """paho has packets to send: send them once the current callbacks are done (all the PUBACKs
        of a batch in one ``send``); wait for writability only if the kernel's buffer is full, as
        asyncio's own transports do (an epoll registration per message would cost two system calls)."""
        if self._fd is not None and not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self._fd is None:
            return
        self._client.loop_write()
        if self._fd is not None and self._client.want_write() and not self._writer_added:
            self.loop.add_writer(self._fd, self._writable)
            self._writer_added = True

    def _writable(self) -> None:
        self._client.loop_write()
        if self._fd is not None and not self._client.want_write() and self._writer_added:
            self.loop.remove_writer(self._fd)
            self._writer_added = False

    def _no_write(self) -> None:
        if self._fd is not None and self._writer_added:
            self.loop.remove_writer(self._fd)
            self._writer_added = False

    async def _run(self) -> None:
        first_delay = 1.0
        delay = first_delay
        while not self._stopping:
            connects = self._link.stats.connects
            try:
                await self.loop.run_in_executor(None, self._client.reconnect)
            except (OSError, ValueError, ssl.SSLError) as exc:
                log.warning("cannot reach broker %s:%s (%s); retrying in %.0f s", self._broker.host,
                            self._broker.port, exc, delay)
            else:
                keepalive = self.loop.create_task(self._keepalive())
                try:
                    await self._socket_gone.wait()
                finally:
                    keepalive.cancel()
                if self._link.stats.connects > connects:  # it was up: start the backoff afresh
                    delay = first_delay
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, max(first_delay, self._broker.max_reconnect_delay_s))

    async def _keepalive(self) -> None:
        while self._client.loop_misc() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1.0)
