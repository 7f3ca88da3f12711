"""A minimal SMTP sink on a free loopback port: accepts every message and keeps it (no TLS, no auth)."""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes
from email.message import Message
from typing import Any


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                sink._session(self.rfile, self.wfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kiosk-smtp-sink", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> "SmtpSink":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def received(self) -> list[tuple[str, list[str], Message]]:
        with self._lock:
            return list(self.messages)

    def _session(self, rfile: Any, wfile: Any) -> None:
        def say(line: str) -> None:
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        say("220 sink ESMTP")
        sender, recipients = "", []
        while True:
            raw = rfile.readline()
            if not raw:
                return
            command = raw.decode("utf-8", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250-sink")
                say("250 8BITMIME")
            elif verb == "MAIL":
                sender, recipients = command.partition(":")[2].strip(" <>"), []
                say("250 OK")
            elif verb == "RCPT":
                recipients.append(command.partition(":")[2].strip(" <>"))
                say("250 OK")
            elif verb == "DATA":
                say("354 go ahead")
                self._store(sender, recipients, self._read_data(rfile))
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                return
            else:
                say("250 OK")

    @staticmethod
    def _read_data(rfile: Any) -> bytes:
        lines = []
        while True:
            line = rfile.readline()
            if not line or line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)

    def _store(self, sender: str, recipients: list[str], data: bytes) -> None:
        with self._lock:
            self.messages.append((sender, recipients, message_from_bytes(data)))
