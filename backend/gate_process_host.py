"""The backend's side of the gate process: start it, feed it, hear from it, restart it.

The gate path runs in a process of its own (backend.gate_process), so the
database work, the dashboards and the HTTP server never take the GIL from it.
:class:`GateProcessHost`

* starts ``python -m backend.gate_process`` with one end of a socket pair, sends
  the setup and then replicates the backend's gate view to it (it is the view's
  :class:`~backend.gate_view.ViewReplica`: a writer returns once the gate process
  holds its change, so a checkout that returned is what the next read sees);
* passes what the gate process sends back to the recorder (the alarm writer):
  alarm records and coalesced device sightings; and item lookups to the view's
  lookup hook (SIP2 refresh);
* restarts the gate process when it dies (with a short backoff), from a fresh
  snapshot of the view; the gate process exits by itself when the socket closes,
  i.e. when the backend stops or dies;
* is the HTTP side's ``GateControl``: ``connected`` (both broker connections up)
  and ``silence`` (published on the backend's own link).

Two threads here, both asleep unless there is traffic: ``gate-process`` (starts
the process, reads its messages) and ``gate-process-send`` (writes to it).
"""

from __future__ import annotations

import logging
import queue
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from typing import Callable, Sequence

from backend.config import BackendServiceConfig
from backend.gate_process_wire import (
    ChildStatus,
    DeviceSightings,
    FrameDecoder,
    GateProcessSetup,
    GateWireError,
    ItemLookedUp,
    Replicated,
    ViewAck,
    encode,
    receive,
)
from backend.gate_records import AlarmRecord, AlarmRecorder
from backend.gate_service import policy_from_settings
from backend.gate_view import GateView, ViewChange
from openshelf.contract import Channel, Kind, SilenceCommand, topic, utcnow
from openshelf.mqtt import MqttLink

log = logging.getLogger(__name__)

COMMAND_LIFETIME = timedelta(seconds=5)
RESTART_DELAYS_S = (0.5, 1.0, 2.0, 5.0)
_STEADY_S = 30.0  # a gate process that ran this long failed afresh: the backoff starts over
_STOP = object()
_NO_STATUS = ChildStatus(False, 0, 0, 0, 0)


def gate_process_command() -> list[str]:
    return [sys.executable, "-m", "backend.gate_process"]


def gate_process_setup(config: BackendServiceConfig, *, state_interval_s: float = 5.0) -> GateProcessSetup:
    """The gate process's setup: the backend's broker identity under a client id of its own."""
    site = config.site_config
    backend_id = config.backend.id
    secret = site.secret_of(backend_id)
    return GateProcessSetup(
        broker=site.broker,
        # The broker's ACL is per user; the client id must differ from the backend's own link.
        client_id=f"{site.site}-{backend_id}-gate",
        username=backend_id if secret is not None else None,
        password=secret,
        site_id=config.site,
        root=config.broker.root,
        backend_id=backend_id,
        policy=policy_from_settings(config.gate_policy),
        alarm_durations_ms={gate.id: config.alarm_duration_ms(gate.id) for gate in site.gates},
        state_interval_s=state_interval_s,
        log_level=logging.getLogger().getEffectiveLevel(),
    )


class _Generation:
    """One gate process: the child, our end of its socket, what is queued for it, its acknowledgements."""

    def __init__(self, popen: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.popen = popen
        self.sock = sock
        self.outgoing: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.started_at = time.monotonic()
        self._acked = 0
        self._closed = False
        self._changed = threading.Condition()
        self.sender = threading.Thread(target=self._send_loop, name="gate-process-send", daemon=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def ack(self, seq: int) -> None:
        with self._changed:
            self._acked = max(self._acked, seq)
            self._changed.notify_all()

    def wait_acked(self, seq: int, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._closed or self._acked >= seq, timeout_s)

    def close(self) -> None:
        """No more sending (the child sees end-of-file once the queue is written); waiters stop waiting."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.outgoing.put(_STOP)

    def _send_loop(self) -> None:
        broken = False
        while True:
            batch = [self.outgoing.get()]
            while batch[-1] is not _STOP:
                try:
                    batch.append(self.outgoing.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is _STOP
            frames = [encode(message) for message in batch if message is not _STOP]
            if frames and not broken:
                try:
                    self.sock.sendall(b"".join(frames))
                except OSError as exc:  # the child is gone; its reader notices and restarts it
                    log.debug("gate process channel: %s", exc)
                    broken = True
            if stop:
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return


class GateProcessHost:
    """Runs the gate path in a child process and keeps it running (see the module docstring)."""

    def __init__(
        self,
        setup: GateProcessSetup,
        view: GateView,
        recorder: AlarmRecorder,
        link: MqttLink,
        *,
        command: Sequence[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        restart_delays_s: Sequence[float] = RESTART_DELAYS_S,
        settle_timeout_s: float = 1.0,
    ) -> None:
        self._setup = setup
        self._view = view
        self._recorder = recorder
        self._link = link
        self._command = list(command or gate_process_command())
        self._clock = clock
        self._restart_delays_s = tuple(restart_delays_s) or (1.0,)
        self._settle_timeout_s = settle_timeout_s
        self._lock = threading.Lock()  # guards _generation and _seq
        self._generation: _Generation | None = None
        self._seq = 0
        self._status = _NO_STATUS
        self._child_connected = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self.last_exit_code: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the gate process (in the background); see :meth:`wait_connected`."""
        if self._thread is not None:
            raise RuntimeError("gate process already started")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name="gate-process", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until the gate process is connected to the broker (its subscriptions are made by then)."""
        return self._child_connected.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the channel (the gate process finishes what it has and exits), hear it out, reap it."""
        if self._thread is None:
            return
        self._stopping.set()
        with self._lock:
            generation = self._generation
        if generation is not None:
            generation.close()
        self._thread.join(timeout_s / 2)
        if self._thread.is_alive() and generation is not None:
            log.warning("gate process %d did not stop in time; killing it", generation.pid)
            generation.popen.kill()
            self._thread.join(timeout_s / 2)
        self._thread = None

    # ------------------------------------------------------------------ what the HTTP side uses

    @property
    def connected(self) -> bool:
        return self._link.connected.is_set() and self._child_connected.is_set()

    def silence(self, gate_id: str, alarm_id: str | None) -> None:
        command = SilenceCommand(alarm_id=alarm_id, expires_at=self._clock() + COMMAND_LIFETIME)
        self._link.publish(topic(self._setup.site_id, Kind.GATE, gate_id, Channel.CMD, "silence",
                                 root=self._setup.root), command)

    @property
    def gate_reads(self) -> int:
        return self._status.gate_reads

    @property
    def alarms(self) -> int:
        return self._status.alarms

    @property
    def suppressed(self) -> int:
        return self._status.suppressed

    @property
    def malformed_messages(self) -> int:
        return self._status.malformed_messages

    @property
    def pid(self) -> int | None:
        """The running gate process's id (None between two of them)."""
        with self._lock:
            return self._generation.pid if self._generation is not None else None

    # ------------------------------------------------------------------ ViewReplica

    def send(self, change: ViewChange) -> object:
        """Called under the view's lock: only queues."""
        with self._lock:
            generation = self._generation
            if generation is None:
                return None
            self._seq += 1
            generation.outgoing.put(Replicated(self._seq, change))
            return generation, self._seq

    def settle(self, ticket: object) -> None:
        if not isinstance(ticket, tuple) or threading.current_thread() is self._thread:
            return  # this thread reads the acknowledgements: it cannot wait for one
        generation, seq = ticket
        if not generation.wait_acked(seq, self._settle_timeout_s):
            log.warning("the gate process has not confirmed a gate view change within %.1f s",
                        self._settle_timeout_s)

    # ------------------------------------------------------------------ the gate-process thread

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            generation = self._spawn()
            if generation is not None:
                self._follow(generation)
                code = self.last_exit_code = self._retire(generation)
                if self._stopping.is_set():
                    if code not in (0, None):
                        log.warning("gate process %d exited with %s while stopping", generation.pid, code)
                    return
                if time.monotonic() - generation.started_at >= _STEADY_S:
                    failures = 0
                what = f"gate process {generation.pid} exited with {code}"
            else:
                what = "could not start the gate process"
            delay = self._restart_delays_s[min(failures, len(self._restart_delays_s) - 1)]
            failures += 1
            log.warning("%s; starting another in %.1f s", what, delay)
            if self._stopping.wait(delay):
                return
            self.restarts += 1

    def _spawn(self) -> _Generation | None:
        ours, theirs = socket.socketpair()
        try:
            popen = subprocess.Popen([*self._command, "--fd", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except OSError as exc:
            log.error("cannot start the gate process %s: %s", self._command, exc)
            ours.close()
            return None
        finally:
            theirs.close()
        generation = _Generation(popen, ours)
        generation.outgoing.put(self._setup)
        with self._lock:
            self._generation = generation
        self._view.replicate_to(self)  # the whole view first, then every change
        generation.sender.start()
        if self._stopping.is_set():  # stop() may have looked before this generation was there
            generation.close()
        log.info("gate process %d started", popen.pid)
        return generation

    def _follow(self, generation: _Generation) -> None:
        """Hear the gate process out: until it closes its end (it stopped or died)."""
        decoder = FrameDecoder()
        while True:
            try:
                messages = receive(generation.sock, decoder)
            except GateWireError as exc:
                log.error("gate process %d: %s; replacing it", generation.pid, exc)
                generation.popen.kill()
                return
            if messages is None:
                return
            for message in messages:
                try:
                    self._dispatch(generation, message)
                except Exception:  # noqa: BLE001 - one bad message must not stop the gate path's supervision
                    log.exception("could not handle %s from the gate process", type(message).__name__)

    def _dispatch(self, generation: _Generation, message: object) -> None:
        if isinstance(message, AlarmRecord):
            self._recorder.record_alarm(message)
        elif isinstance(message, DeviceSightings):
            for sighting in message.sightings:
                self._recorder.record_device(sighting)
        elif isinstance(message, ViewAck):
            generation.ack(message.seq)
        elif isinstance(message, ChildStatus):
            self._status = message
            if message.connected:
                self._child_connected.set()
            else:
                self._child_connected.clear()
        elif isinstance(message, ItemLookedUp):
            self._view.report_lookup(message.item_id)
        else:
            log.warning("ignored an unexpected %s from the gate process", type(message).__name__)

    def _retire(self, generation: _Generation) -> int | None:
        """The gate process closed its channel: stop replicating to it, reap it; its exit code."""
        self._view.replicate_to(None)
        with self._lock:
            if self._generation is generation:
                self._generation = None
        self._child_connected.clear()
        generation.close()
        generation.sender.join(5)
        generation.sock.close()
        try:
            return generation.popen.wait(5)
        except subprocess.TimeoutExpired:
            log.warning("gate process %d closed its channel but did not exit; killing it", generation.pid)
            generation.popen.kill()
            return generation.popen.wait(5)
