"""The gate process: the backend's gate path alone in a process, one thread, one event loop.

Started by the backend (backend.gate_process_host) as ``python -m
backend.gate_process --fd N`` with one end of a socket pair. It receives its
setup and a replica of the backend's gate view over that socket, connects to the
broker as the backend device (its own client id), and answers every gate read
with :class:`~backend.gate_service.GateService` — the link driven by the loop
(``MqttLink.start_on_loop``), so no other thread competes for the GIL on the
path from a ``tag_arrived`` to its ``AlarmCommand``. What must be stored (alarm
records, device sightings, coalesced) goes back over the socket.

It exits when the socket closes: the backend stopped it, or died (no orphans).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import time
from typing import Sequence

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
)
from backend.gate_records import AlarmRecord, DeviceSighting, merge_sightings
from backend.gate_service import GateService
from backend.gate_view import GateView, LookupsWanted
from openshelf.mqtt import MqttLink

log = logging.getLogger("backend.gate_process")  # not __name__: run as __main__

_TICK_S = 0.1  # how soon a connection change reaches the backend's health check
_LOOKUP_REPORT_EVERY_S = 5.0  # per item; the backend's refresher has its own, longer, memory
_READ_CHUNK = 1 << 16


class ParentOutbox:
    """The gate service's recorder in the gate process: frames to the backend, sent after the gate's answer.

    Messages queued while a read is handled are pickled and sent together once the loop
    has run the link's own flush (scheduled first), so the answer to the gate never waits
    on them.
    Device sightings are kept (latest per device) and sent every ``sightings_every_s``.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._pending: list[object] = []
        self._flush_scheduled = False
        self._sightings: dict[str, DeviceSighting] = {}
        self._reported: dict[str, float] = {}

    # ------------------------------------------------------------------ AlarmRecorder

    def record_alarm(self, record: AlarmRecord) -> None:
        self.send(record)

    def record_device(self, sighting: DeviceSighting) -> None:
        earlier = self._sightings.get(sighting.device_id)
        self._sightings[sighting.device_id] = sighting if earlier is None else merge_sightings(earlier, sighting)

    # ------------------------------------------------------------------ lookups (SIP2 refresh)

    def lookup_hook(self, item_id: str) -> None:
        """The gate view's lookup hook while the backend wants lookups (SIP2 mode): at most one per item
        every few seconds."""
        now = time.monotonic()
        last = self._reported.get(item_id)
        if last is not None and now - last < _LOOKUP_REPORT_EVERY_S:
            return
        if len(self._reported) > 50_000:
            self._reported.clear()
        self._reported[item_id] = now
        self.send(ItemLookedUp(item_id))

    # ------------------------------------------------------------------ sending

    def send(self, message: object) -> None:
        self._pending.append(message)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def send_sightings(self) -> None:
        if self._sightings:
            batch, self._sightings = tuple(self._sightings.values()), {}
            self.send(DeviceSightings(batch))

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._pending and not self._writer.is_closing():
            messages, self._pending = self._pending, []
            self._writer.write(b"".join(encode(message) for message in messages))


class _GateProcess:
    """One run: setup received, link up, follow the backend until the socket closes."""

    def __init__(self, setup: GateProcessSetup, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 decoder: FrameDecoder) -> None:
        self._setup = setup
        self._reader = reader
        self._decoder = decoder
        self.outbox = ParentOutbox(writer)
        self.view = GateView()
        self.link = MqttLink(setup.broker, client_id=setup.client_id, status_topic=None,
                             username=setup.username, password=setup.password)
        durations = dict(setup.alarm_durations_ms)
        self.service = GateService(
            self.link, self.view, setup.policy, site_id=setup.site_id, root=setup.root,
            backend_id=setup.backend_id, alarm_recorder=self.outbox, alarm_duration_ms=durations.get,
            state_interval_s=setup.state_interval_s,
        )
        self._last_status: ChildStatus | None = None
        self._status_sent_at = 0.0

    async def run(self, first: list[object]) -> None:
        """``first``: messages that arrived together with the setup."""
        self.service.subscribe()
        self.link.start_on_loop()
        ticker = asyncio.create_task(self._tick(), name="gate-process-tick")
        try:
            self._handle(first)
            await self._follow_backend()
        finally:
            ticker.cancel()
            try:
                await ticker
            except asyncio.CancelledError:
                pass
            await self.link.aclose()
            self.outbox.send_sightings()
            self._report_status(final=True)
            self.outbox.flush()

    async def _follow_backend(self) -> None:
        while True:
            data = await self._reader.read(_READ_CHUNK)
            if not data:
                log.info("the backend closed the channel; the gate process stops")
                return
            self._handle(self._decoder.feed(data))

    def _handle(self, messages: list[object]) -> None:
        """Apply view changes; one acknowledgement for all of them (the backend's writers wait for it)."""
        acked = None
        for message in messages:
            if not isinstance(message, Replicated):
                raise GateWireError(f"unexpected {type(message).__name__} from the backend")
            change = message.change
            if isinstance(change, LookupsWanted):
                self.view.set_lookup_hook(self.outbox.lookup_hook if change.wanted else None)
            else:
                try:
                    self.view.apply(change)
                except TypeError as exc:
                    raise GateWireError(str(exc)) from exc
            acked = message.seq
        if acked is not None:
            self.outbox.send(ViewAck(acked))

    async def _tick(self) -> None:
        state_every = self.service.state_interval_s
        sightings_every = self._setup.sightings_every_s
        next_state = next_sightings = time.monotonic()
        was_connected = False
        while True:
            now = time.monotonic()
            connected = self.link.connected.is_set()
            if now >= next_state or connected and not was_connected:  # fresh counters as soon as we are up
                self.service.publish_state()
                next_state = now + state_every
            if now >= next_sightings:
                self.outbox.send_sightings()
                next_sightings = now + sightings_every
            self._report_status()
            was_connected = connected
            await asyncio.sleep(_TICK_S)

    def _report_status(self, *, final: bool = False) -> None:
        """A connection change at once, changed counters once a second."""
        status = ChildStatus(self.link.connected.is_set(), self.service.gate_reads, self.service.alarms,
                             self.service.suppressed, self.service.malformed_messages)
        last = self._last_status
        now = time.monotonic()
        if status == last:
            return
        if final or last is None or status.connected != last.connected or now - self._status_sent_at >= 1.0:
            self._last_status = status
            self._status_sent_at = now
            self.outbox.send(status)


async def serve(sock: socket.socket) -> int:
    """Run the gate path until ``sock`` (the backend's channel) closes; returns the exit code."""
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    decoder = FrameDecoder()
    try:
        first = await _receive_setup(reader, decoder)
        if first is None:
            return 0
        setup, rest = first
        logging.getLogger().setLevel(setup.log_level)
        log.info("gate process %s answering gate reads for site %s", setup.client_id, setup.site_id)
        await _GateProcess(setup, reader, writer, decoder).run(rest)
        return 0
    except GateWireError as exc:
        log.error("gate process: %s; stopping (the backend starts a new one)", exc)
        return 1
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the backend is gone already


async def _receive_setup(reader: asyncio.StreamReader,
                         decoder: FrameDecoder) -> tuple[GateProcessSetup, list[object]] | None:
    """The setup and whatever came with it; None when the backend closed the channel first."""
    while True:
        data = await reader.read(_READ_CHUNK)
        if not data:
            return None
        messages = decoder.feed(data)
        if not messages:
            continue
        setup = messages[0]
        if not isinstance(setup, GateProcessSetup):
            raise GateWireError(f"expected the setup first, got {type(setup).__name__}")
        return setup, messages[1:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.gate_process",
                                     description="The backend's gate path (started by the backend).")
    parser.add_argument("--fd", type=int, required=True, help="the backend's end of the socket pair")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # Ctrl-C on a terminal reaches the whole process group; the backend stops us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What threads remain (the executor that connects) share the GIL with the loop: hand it back sooner.
    sys.setswitchinterval(0.0005)
    sock = socket.socket(fileno=args.fd)
    try:
        return asyncio.run(serve(sock))
    except Exception:  # noqa: BLE001 - the last line of defence says why; the backend restarts us
        log.exception("gate process failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
