"""The real processes around the kiosk under test, started as a library would start them.

* Mosquitto with one user per device and the generated ACL (``openshelf.broker``);
* ``openshelf backend`` with standalone circulation on SQLite: every database it
  is given is a copy of one template that holds only the schema and a librarian
  account made with ``openshelf backend create-user``; patrons, items, loans,
  holds and fines come through the staff REST API (:mod:`kiosk_library`);
* the FEIG reader simulator on TCP (in this process, so tests can place tags and
  read their AFI) and ``openshelf rfid run`` for the kiosk's pad;
* an SMTP sink and a file "printer" for receipts.

The site is not a demo site: every secret is a real one and nothing is seeded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import yaml

from openshelf.broker import write_mosquitto_files
from openshelf.contract import (
    CardPresented,
    CardTechnology,
    Channel,
    CirculationOp,
    CirculationReply,
    CirculationRequest,
    KioskState,
    Kind,
    TopicParts,
    expires_in,
    new_event_id,
    topic,
)
from openshelf.mqtt import MqttLink
from openshelf.site import SiteConfig, load_site
from rfid.readersim import SimulatedReader
from rfid.readersim.tcp_transport import TcpTransport
from tests.helpers import MOSQUITTO_RUN_AS, REPO, Mosquitto, Proc, free_port, wait_for

from kiosk_library import Library
from kiosk_smtp import SmtpSink

KIOSK, PAD, CARD_READER, BACKEND = "kiosk-1", "pad-1", "nfc-1", "backend"
KIOSK_SECRET = "kiosk-1-secret-0123"
EXIT_CODE = "24680"
BRANCH = "MAIN"
STAFF_USER, STAFF_PASSWORD = "librarian", "librarian-password-0123"
READER_TUNING = {"poll_interval_ms": 30, "departed_after_ms": 300, "write_retries": 2, "write_backoff_ms": 10,
                 "set_wait_ms": 1200}
START_TIMEOUT_S = 60.0  # a process start on a loaded 2-core machine
SPARE_SCRIPT = Path(__file__).with_name("kiosk_backend_spare.py")


class KioskStack:
    """Everything the kiosk talks to; the kiosk app itself is the rig's (it runs in the test process)."""

    def __init__(self, workdir: Path, *, reader_options: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.site_id = f"t{uuid.uuid4().hex[:10]}"
        self.reader_options = {**READER_TUNING, **(reader_options or {})}
        self.sim = SimulatedReader()
        self.transport = TcpTransport(self.sim)
        self.smtp = SmtpSink()
        self.printer_file = workdir / "printer.bin"
        self.broker_port, self.http_port = free_port(), free_port()
        self.site_path = workdir / "site.yaml"
        self.template = workdir / "template.sqlite3"
        self.database = self.template
        self.broker: Mosquitto | None = None
        self.backend: Proc | None = None
        self.reader: Proc | None = None
        self.backend_logs: list[Path] = []
        self.states: list[KioskState] = []
        self.requests: list[CirculationRequest] = []
        self._lock = threading.Lock()
        self._databases = 0
        self._template_maker: subprocess.Popen[str] | None = None
        self._spare: SpareBackend | None = None
        self._watch: MqttLink | None = None
        self._card_reader: MqttLink | None = None
        self._started: list[Callable[[], object]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "KioskStack":
        """Start everything; the reader, the template database and the first backend come up in the background."""
        self.transport.start()
        self._started.append(self.transport.stop)
        self.smtp.start()
        self._started.append(self.smtp.stop)
        site = self.write_site()
        conf = write_mosquitto_files(site, self.workdir / "broker", port=self.broker_port, persistent=False,
                                     run_as=MOSQUITTO_RUN_AS)
        self.broker = Mosquitto(self.workdir, conf=conf, port=self.broker_port)
        self._started.append(self.broker.stop)
        self.broker.start()
        self.reader = Proc("rfid-pad", ["rfid", "run", "--site", str(self.site_path), "--device", PAD],
                           self.workdir / "rfid.log").start(wait_ready=False)
        self._template_maker = self._make_template()
        self._spawn_spare()
        self._watch = self._link(BACKEND, "watch")
        self._watch.subscribe(topic(self.site_id, Kind.KIOSK, KIOSK, Channel.STATE), KioskState, self._keep_state)
        self._watch.subscribe(topic(self.site_id, Kind.BACKEND, BACKEND, Channel.CMD, "circulation"),
                              CirculationRequest, self._keep_request)
        self._card_reader = self._link(CARD_READER, "card")
        for link in (self._watch, self._card_reader):
            self._started.append(link.stop)
            assert link.start(wait_s=10), "test links could not connect to the broker"
        return self

    def wait_ready(self) -> None:
        """The reader service and a first backend (on a fresh database) are serving."""
        assert self._template_maker is not None
        _, errors = self._template_maker.communicate(timeout=START_TIMEOUT_S)
        assert self._template_maker.returncode == 0, f"openshelf backend create-user failed: {errors}"
        assert not Path(f"{self.template}-wal").exists(), "the template database was not closed cleanly"
        self.start_backend(self.fresh_database())
        assert self.reader is not None
        self.reader.ready_line = wait_for(self.reader._ready, START_TIMEOUT_S, 0.05, f"reader ready ({self.reader.log_path})")

    def stop(self) -> None:
        """Stop every process (each one even if another fails) and check each exited cleanly."""
        problems: list[str] = []
        for name, stop in (("backend", self.stop_backend), ("reader", self._stop_reader),
                           ("spare backend", lambda: self._spare.dismiss() if self._spare else 0)):
            try:
                code = stop()
            except AssertionError as exc:
                problems.append(f"{name}: {exc}")
            else:
                if code != 0:
                    problems.append(f"{name} exited with {code}")
        if self._template_maker is not None and self._template_maker.poll() is None:
            self._template_maker.kill()
            self._template_maker.wait(5)
        while self._started:  # links, broker, SMTP sink, simulator: whatever started, newest first
            self._started.pop()()
        assert not problems, "\n".join(problems)

    def _stop_reader(self) -> int:
        if self.reader is None:
            return 0
        code = self.reader.stop()
        assert "Traceback" not in self.reader.log_text(), self.reader.log_text()[-3000:]
        return code

    # ------------------------------------------------------------------ the site file

    def write_site(self) -> SiteConfig:
        """Write site.yaml for the current database (only processes started afterwards read it)."""
        draft = self.site_path.with_suffix(".tmp")
        draft.write_text(yaml.safe_dump(self._site_document(), allow_unicode=True), encoding="utf-8")
        os.replace(draft, self.site_path)  # a process starting now never reads half a file
        return load_site(self.site_path)

    def _site_document(self) -> dict[str, Any]:
        kiosk = {"id": KIOSK, "name": "Máy mượn trả 1", "secret": KIOSK_SECRET, "pad_reader": PAD,
                 "card_reader": CARD_READER, "language": "vi", "require_pin": True, "idle_timeout_s": 60,
                 "backend_deadline_ms": 3000, "offline_mode": "queue", "exit_code": EXIT_CODE, "fullscreen": False,
                 "printer": {"kind": "escpos-file", "device": str(self.printer_file), "codepage": "cp1258"},
                 "smtp": {"host": "127.0.0.1", "port": self.smtp.port, "starttls": False,
                          "sender": "thuvien@example.vn"}}
        pad = {"id": PAD, "role": "pad", "port": self.transport.url, "profile": "feig-sim",
               "secret": "pad-1-reader-secret", **self.reader_options}
        # The kiosk's NFC card reader: its service (``openshelf rfid nfc``) is tested in tests/rfid; here the
        # test publishes its card_presented events with its credentials.
        card_reader = {"id": CARD_READER, "role": "pad", "port": "udp:127.0.0.1:9", "secret": "nfc-1-reader-secret"}
        backend = {"id": BACKEND, "host": "127.0.0.1", "port": self.http_port, "secret": "backend-secret-0123",
                   "session_secret": "session-secret-0123456789", "database_url": f"sqlite:///{self.database}",
                   "circulation": {"mode": "standalone", "branch": BRANCH}}
        return {"site": self.site_id, "name": "Thư viện tỉnh Hà Nam", "data_dir": str(self.workdir / "data"),
                "broker": {"url": f"mqtt://127.0.0.1:{self.broker_port}"}, "backend": backend,
                "readers": [pad, card_reader], "kiosks": [kiosk]}

    # ------------------------------------------------------------------ the backend

    def _make_template(self) -> subprocess.Popen[str]:
        """Schema and one librarian account, made the documented way (``openshelf backend create-user``)."""
        command = [sys.executable, "-m", "openshelf", "backend", "--site", str(self.site_path), "create-user",
                   "--username", STAFF_USER, "--role", "admin"]
        maker = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True, cwd=REPO)
        assert maker.stdin is not None
        maker.stdin.write(STAFF_PASSWORD + "\n")
        maker.stdin.close()
        maker.stdin = None  # communicate() must not flush it again
        return maker

    def fresh_database(self) -> Path:
        """A new database file: a copy of the template (schema and the librarian, nothing else)."""
        self._databases += 1
        database = self.workdir / f"library-{self._databases}.sqlite3"
        shutil.copyfile(self.template, database)
        return database

    def _spawn_spare(self) -> None:
        self._spare = SpareBackend("backend", [], self.workdir / f"backend-{len(self.backend_logs) + 1}.log")
        self.backend_logs.append(self._spare.log_path)
        self._spare.start(wait_ready=False)

    def start_backend(self, database: Path) -> Proc:
        """``openshelf backend`` on ``database`` (the same port every time: the kiosk's backend URL)."""
        assert self.backend is None or not self.backend.alive(), "the backend is still running"
        self.database = database
        self.write_site()
        if self._spare is None:
            self._spawn_spare()
        assert self._spare is not None
        self.backend, self._spare = self._spare, None
        self.backend.release(self.site_path)
        self.backend.ready_line = wait_for(self.backend._ready, START_TIMEOUT_S, 0.05,
                                           f"backend ready ({self.backend.log_path})")
        self._spawn_spare()  # imports while the next test runs
        return self.backend

    def stop_backend(self) -> int:
        """SIGTERM, as a service manager stops it; its log must hold no traceback."""
        if self.backend is None:
            return 0
        code = self.backend.stop()
        text = self.backend.log_text()
        assert "Traceback" not in text, f"the backend logged a traceback:\n{text[-4000:]}"
        self.backend = None
        return code

    def kill_backend(self) -> None:
        """SIGKILL: the process dies mid-flight (a power cut of the server, as the kiosk sees it)."""
        assert self.backend is not None
        self.backend.kill()
        self.backend = None

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def librarian(self) -> Library:
        return Library(self.backend_url, STAFF_USER, STAFF_PASSWORD)

    # ------------------------------------------------------------------ the broker, as other devices

    def _link(self, device_id: str, purpose: str) -> MqttLink:
        site = load_site(self.site_path)
        return MqttLink(site.broker, client_id=f"{self.site_id}-{purpose}-{uuid.uuid4().hex[:6]}",
                        username=device_id, password=site.secret_of(device_id))

    def present_card(self, card_id: str) -> None:
        """The NFC card reader at the kiosk reads a patron card."""
        assert self._card_reader is not None
        event = CardPresented(reader_id=CARD_READER, card_id=card_id, technology=CardTechnology.ISO14443A)
        self._card_reader.publish(topic(self.site_id, Kind.READER, CARD_READER, Channel.EVENT, "card_presented"),
                                  event).wait_for_publish(5)

    def replay_offline_checkout(self, card_id: str, item_id: str, occurred_at: datetime) -> CirculationReply:
        """What a kiosk sends when it replays a loan it recorded offline at ``occurred_at`` (days ago, say):
        the backend applies it then, so its due date may already have passed (an overdue loan, made through
        the backend's own interface)."""
        site = load_site(self.site_path)
        link = self._link(KIOSK, "replay")
        reply_topic = topic(self.site_id, Kind.KIOSK, KIOSK, Channel.REPLY, "circulation")
        replies: dict[str, CirculationReply] = {}
        link.subscribe(reply_topic, CirculationReply, lambda parts, reply: replies.update({reply.correlation_id: reply}))
        assert link.start(wait_s=10)
        try:
            request = CirculationRequest(kiosk_id=KIOSK, op=CirculationOp.CHECKOUT, idempotency_key=new_event_id(),
                                         card_id=card_id, item_id=item_id, no_block=True, occurred_at=occurred_at,
                                         reply_to=reply_topic, expires_at=expires_in(10))
            link.publish(topic(self.site_id, Kind.BACKEND, site.backend.id, Channel.CMD, "circulation"), request)
            reply = wait_for(lambda: replies.get(request.correlation_id), 15, what=f"the replayed checkout of {item_id}")
        finally:
            link.stop()
        assert reply.ok, f"replayed checkout of {item_id} refused: {reply.code} {reply.message_en}"
        return reply

    def _keep_state(self, parts: TopicParts, state: KioskState) -> None:
        with self._lock:
            self.states.append(state)

    def _keep_request(self, parts: TopicParts, request: CirculationRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def sent(self, **match: Any) -> list[CirculationRequest]:
        """Circulation requests the kiosk sent (as the broker delivered them), filtered by field values."""
        with self._lock:
            requests = list(self.requests)
        return [request for request in requests
                if all(getattr(request, name) == value for name, value in match.items())]

    def last_state(self) -> KioskState | None:
        with self._lock:
            return self.states[-1] if self.states else None

    def seen_states(self) -> list[KioskState]:
        with self._lock:
            return list(self.states)


class SpareBackend(Proc):
    """A backend process started ahead (:mod:`kiosk_backend_spare`): ``release`` makes it run a site file."""

    def start(self, wait_ready: bool = False, timeout_s: float = START_TIMEOUT_S) -> "SpareBackend":
        assert not wait_ready, "a spare waits for release()"
        self._stderr = self.log_path.open("a", encoding="utf-8")
        self.popen = subprocess.Popen([sys.executable, str(SPARE_SCRIPT)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, text=True, cwd=REPO,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._lines = []
        self._reader = threading.Thread(target=self._read_stdout, name=f"stdout-{self.name}", daemon=True)
        self._reader.start()
        return self

    def release(self, site_path: Path) -> None:
        assert self.popen is not None and self.popen.stdin is not None
        try:
            self.popen.stdin.write(f"{site_path}\n")
            self.popen.stdin.close()
        except BrokenPipeError:
            pass  # it died while waiting: waiting for it to be ready reports its exit and log

    def dismiss(self) -> int:
        """Not needed after all: end of input, it exits without starting."""
        assert self.popen is not None and self.popen.stdin is not None
        self.popen.stdin.close()
        self.popen.wait(START_TIMEOUT_S)
        return self.stop()
