"""Serve a SimulatedReader over TCP for pyserial's ``socket://HOST:PORT`` URLs.

Every connection gets its own frame parser (one host per line in practice).
``stop()`` closes all connections, which the driver sees as a vanished port;
``start()`` again binds the same port.
"""

from __future__ import annotations

import logging
import select
import socket

from rfid.readersim.core import ReaderSession, SimulatedReader
from rfid.readersim.transport import ThreadedTransport

logger = logging.getLogger(__name__)

RECV_CHUNK = 4096
SEND_TIMEOUT_S = 2.0


class TcpTransport(ThreadedTransport):
    thread_name = "readersim-tcp"

    def __init__(self, reader: SimulatedReader, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self._reader = reader
        self._host = host
        self._port = port
        self._listener: socket.socket | None = None
        self._clients: dict[socket.socket, ReaderSession] = {}

    @property
    def port(self) -> int:
        """The bound TCP port (0 until the first start)."""
        return self._port

    @property
    def url(self) -> str:
        return f"socket://{self._host}:{self._port}"

    def _setup(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._host, self._port))
            listener.listen(4)
        except OSError:
            listener.close()
            raise
        self._port = listener.getsockname()[1]
        self._listener = listener

    def _teardown(self) -> None:
        for client in list(self._clients):
            self._close_client(client)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _serve(self) -> None:
        assert self._listener is not None
        while True:
            watched = [self._listener, self._wake_r, *self._clients]
            readable, _, _ = select.select(watched, [], [])
            if self._wake_r in readable:
                return
            for ready in readable:
                if ready is self._listener:
                    self._accept()
                else:
                    self._serve_client(ready)

    def _accept(self) -> None:
        assert self._listener is not None
        client, peer = self._listener.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(SEND_TIMEOUT_S)
        self._clients[client] = self._reader.session()
        logger.debug("simulator client connected from %s", peer)

    def _serve_client(self, client: socket.socket) -> None:
        try:
            data = client.recv(RECV_CHUNK)
            if not data:
                self._close_client(client)
                return
            answer = self._clients[client].feed(data)
            if answer:
                client.sendall(answer)
        except OSError as exc:
            logger.debug("simulator client dropped: %s", exc)
            self._close_client(client)

    def _close_client(self, client: socket.socket) -> None:
        self._clients.pop(client, None)
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        client.close()
