"""The camera service: watches its gates' alarms and turns the ring buffer into evidence.

The MQTT handler only queues the alarm; a worker thread takes the snapshot
(waiting briefly for the frames just after the alarm), hands it to the
uploader, and builds the clip once the post-roll has been recorded. When there
is no usable frame, the reason goes to the backend as an evidence problem
instead, so staff see *why* an alarm has no picture; likewise a clip with no
frame near the alarm (the stream was down) is replaced by the reason, taken
from the stream's state when the alarm arrived.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from cameras.evidence import EvidenceError, choose_snapshot, clip_suffix, write_clip, write_snapshot
from cameras.grabber import Grabber, GrabberSettings
from cameras.ringbuffer import BufferedFrame, FrameRing
from cameras.source import FrameSource
from cameras.uploader import ALARM_ID_PATTERN, EvidenceKind, EvidenceSink, UploadError
from openshelf.contract import (
    DEFAULT_ROOT,
    CameraState,
    Channel,
    GateAlarmEvent,
    Kind,
    StreamState,
    TopicParts,
    topic,
    utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import CameraSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_ALARM_ID = re.compile(ALARM_ID_PATTERN)
_REMEMBERED_ALARMS = 1024
_STOP = object()


@dataclass(frozen=True)
class EvidenceOptions:
    pre_s: float = 5.0
    post_s: float = 5.0
    snapshot_window_s: float = 0.5
    # The ring holds the pre-roll plus this much, so an alarm delivered late still finds its pre-roll.
    buffer_slack_s: float = 3.0
    # How long past the post-roll to wait for frames before building the clip from what there is.
    clip_grace_s: float = 2.0
    # Choose the snapshot once a frame this long after the alarm is buffered (a frame or two at
    # camera rates), so the nearest frame after the alarm can compete without waiting the whole window.
    snapshot_settle_s: float = 0.15
    # Give up waiting for that frame after this long and choose from what there is.
    snapshot_wait_s: float = 1.5
    # A clip must show the alarm moment: without a frame this close to it (the stream was down),
    # the backend gets the reason instead of a clip of unrelated seconds.
    clip_max_gap_s: float = 1.0
    # How often the worker checks whether a clip's post-roll is complete (bounds clip latency).
    clip_poll_s: float = 0.05
    clip_suffix: str = ".avi"
    jpeg_quality: int = 85


@dataclass
class _PendingClip:
    alarm_id: str
    started_at: datetime
    # The stream's state when the alarm arrived: the clip is built seconds later, when it may be live again.
    stream_at_alarm: CameraState
    frames: dict[int, BufferedFrame] = field(default_factory=dict)


class CameraService:
    def __init__(
        self,
        link: MqttLink,
        settings: CameraSettings,
        source: FrameSource,
        uploader: EvidenceSink,
        site_id: str,
        *,
        evidence_dir: Path,
        root: str = DEFAULT_ROOT,
        clock: Clock = utcnow,
        options: EvidenceOptions = EvidenceOptions(),
        grabber_settings: GrabberSettings = GrabberSettings(),
    ) -> None:
        self.settings = settings
        self.camera_id = settings.id
        self.evidence_dir = evidence_dir
        self.options = options
        self._link = link
        self._uploader = uploader
        self._site_id = site_id
        self._root = root
        self._clock = clock
        self.ring = FrameRing(options.pre_s + options.buffer_slack_s, jpeg_quality=options.jpeg_quality)
        self.grabber = Grabber(settings.id, source, self.ring, self._publish_state, grabber_settings)
        self._alarms: queue.Queue[object] = queue.Queue()
        self._pending_clips: list[_PendingClip] = []
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._worker: threading.Thread | None = None
        self._state_sent_for_connect = 0
        self.snapshots = 0
        self.clips = 0
        self.problems = 0

    @property
    def state_topic(self) -> str:
        return topic(self._site_id, Kind.CAMERA, self.camera_id, Channel.STATE, root=self._root)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._worker is not None:
            raise RuntimeError(f"camera service {self.camera_id} already started")
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        self._worker = threading.Thread(target=self._work, name=f"evidence-{self.camera_id}", daemon=True)
        self._worker.start()
        self.grabber.start()
        for gate_id in self.settings.gates:
            alarm_topic = topic(self._site_id, Kind.GATE, gate_id, Channel.EVENT, "alarm", root=self._root)
            self._link.subscribe(alarm_topic, GateAlarmEvent, self._on_alarm)
        log.info("camera %s watching gates %s", self.camera_id, ", ".join(self.settings.gates) or "(none)")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop grabbing; clips still waiting for their post-roll are built from the frames there are."""
        if self._worker is None:
            return
        self.grabber.stop()
        self._alarms.put(_STOP)
        self._worker.join(timeout_s)
        if self._worker.is_alive():
            log.error("camera %s: evidence worker did not stop within %.1f s", self.camera_id, timeout_s)
        self._worker = None

    # ------------------------------------------------------------------ MQTT side (must be quick)

    def _on_alarm(self, parts: TopicParts, event: GateAlarmEvent) -> None:
        self._alarms.put(event)

    def _publish_state(self, state: CameraState) -> None:
        try:
            self._link.publish(self.state_topic, state, retain=True)
        except Exception:  # noqa: BLE001 - losing one state report must not stop the grabber
            log.exception("camera %s: could not publish state", self.camera_id)

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            try:
                item = self._alarms.get(timeout=self.options.clip_poll_s if self._pending_clips else 0.5)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._build_due_clips(force=True)
                return
            if isinstance(item, GateAlarmEvent):
                self._guarded(self._handle_alarm, item)
            self._build_due_clips(force=False)
            self._republish_state_after_connect()

    def _republish_state_after_connect(self) -> None:
        """Send the current state again after each (re)connect.

        A state published while the link was still connecting can reach the broker after a
        later one, leaving a stale retained state; repeating it once connected settles it.
        """
        connects = self._link.stats.connects
        if connects != self._state_sent_for_connect and self._link.connected.is_set():
            self._state_sent_for_connect = connects
            self._publish_state(self.grabber.state())

    def _guarded(self, action: Callable[[GateAlarmEvent], None], event: GateAlarmEvent) -> None:
        try:
            action(event)
        except Exception:  # noqa: BLE001 - one bad alarm must not stop evidence for the next
            log.exception("camera %s: evidence for alarm %s failed", self.camera_id, event.alarm_id)

    def _handle_alarm(self, event: GateAlarmEvent) -> None:
        alarm_id = event.alarm_id
        if not _ALARM_ID.match(alarm_id):
            log.error("camera %s: ignoring alarm with unusable id %r from gate %s",
                      self.camera_id, alarm_id, event.gate_id)
            return
        if alarm_id in self._handled:
            log.info("camera %s: alarm %s already handled", self.camera_id, alarm_id)
            return
        self._remember(alarm_id)
        alarm_at = event.started_at
        if alarm_at.tzinfo is None:
            log.warning("camera %s: alarm %s has a time without timezone; taking it as UTC", self.camera_id, alarm_id)
            alarm_at = alarm_at.replace(tzinfo=timezone.utc)
        log.info("camera %s: alarm %s at gate %s, started %s",
                 self.camera_id, alarm_id, event.gate_id, alarm_at.isoformat())
        pending = _PendingClip(alarm_id, alarm_at, self.grabber.state())
        self._collect_clip_frames(pending)
        self._pending_clips.append(pending)
        self._take_snapshot(alarm_id, alarm_at)

    def _remember(self, alarm_id: str) -> None:
        self._handled[alarm_id] = None
        if len(self._handled) > _REMEMBERED_ALARMS:
            self._handled.popitem(last=False)

    # ------------------------------------------------------------------ snapshot

    def _take_snapshot(self, alarm_id: str, alarm_at: datetime) -> None:
        window = self.options.snapshot_window_s
        if self.grabber.stream is StreamState.LIVE:
            # Frames just after the alarm may still be on their way; the nearest one may be among them.
            settle = timedelta(seconds=min(window, self.options.snapshot_settle_s))
            self.ring.wait_until_captured(alarm_at + settle, self.options.snapshot_wait_s)
        span = timedelta(seconds=window)
        candidates = self.ring.frames_between(alarm_at - span, alarm_at + span, from_keyframe=True)
        chosen = choose_snapshot(candidates, alarm_at, window, jpeg_quality=self.options.jpeg_quality)
        if chosen is None:
            self._report_problem(alarm_id, "snapshot", self._why_no_frame(alarm_at))
            return
        try:
            path = write_snapshot(chosen, self.evidence_dir / alarm_id / "snapshot.jpg")
        except EvidenceError as exc:
            self._report_problem(alarm_id, "snapshot", f"snapshot could not be written: {exc}")
            return
        offset = (chosen.captured_at - alarm_at).total_seconds()
        log.info("camera %s: snapshot for alarm %s (%+.3f s from alarm)", self.camera_id, alarm_id, offset)
        self._enqueue(alarm_id, "snapshot", lambda: self._uploader.enqueue_snapshot(alarm_id, path, chosen.captured_at))
        self.snapshots += 1

    def _why_no_frame(self, alarm_at: datetime) -> str:
        state = self.grabber.state()
        if state.stream is not StreamState.LIVE:
            return f"camera stream {state.stream.value}: {state.reason or 'no reason known'}"
        frames = self.ring.snapshot()
        if not frames:
            return "no frames buffered"
        return (f"no frame within {self.options.snapshot_window_s:g} s of the alarm at {alarm_at.isoformat()} "
                f"(buffer holds {frames[0].captured_at.isoformat()} to {frames[-1].captured_at.isoformat()})")

    # ------------------------------------------------------------------ clip

    def _clip_span(self, pending: _PendingClip) -> tuple[datetime, datetime]:
        return (pending.started_at - timedelta(seconds=self.options.pre_s),
                pending.started_at + timedelta(seconds=self.options.post_s))

    def _collect_clip_frames(self, pending: _PendingClip) -> None:
        start, end = self._clip_span(pending)
        # From the keyframe before the pre-roll: an H.264 clip can only start at one.
        for frame in self.ring.frames_between(start, end, from_keyframe=True):
            pending.frames[frame.sequence] = frame

    def _build_due_clips(self, *, force: bool) -> None:
        still_waiting = []
        for pending in self._pending_clips:
            self._collect_clip_frames(pending)
            if force or self._clip_due(pending):
                try:
                    self._build_clip(pending)
                except Exception:  # noqa: BLE001 - one bad clip must not stop the worker
                    log.exception("camera %s: clip for alarm %s failed", self.camera_id, pending.alarm_id)
            else:
                still_waiting.append(pending)
        self._pending_clips = still_waiting

    def _clip_due(self, pending: _PendingClip) -> bool:
        _, end = self._clip_span(pending)
        latest = self.ring.latest()
        if latest is not None and latest.captured_at >= end:
            return True
        return self._clock() >= end + timedelta(seconds=self.options.clip_grace_s)

    def _build_clip(self, pending: _PendingClip) -> None:
        alarm_id = pending.alarm_id
        frames = [pending.frames[key] for key in sorted(pending.frames)]
        missing = self._why_clip_misses_the_alarm(pending, frames)
        if missing is not None:
            self._report_problem(alarm_id, "clip", missing)
            return
        path = self.evidence_dir / alarm_id / f"clip{clip_suffix(frames, self.options.clip_suffix)}"
        try:
            clip = write_clip(frames, path, alarm_at=pending.started_at)
        except EvidenceError as exc:
            log.error("camera %s: clip for alarm %s failed: %s", self.camera_id, alarm_id, exc)
            self._report_problem(alarm_id, "clip", f"clip could not be written: {exc}")
            return
        log.info("camera %s: clip for alarm %s with %d frames", self.camera_id, alarm_id, clip.frames)
        self._enqueue(alarm_id, "clip",
                      lambda: self._uploader.enqueue_clip(alarm_id, clip.path, clip.started_at, clip.content_type))
        self.clips += 1

    def _why_clip_misses_the_alarm(self, pending: _PendingClip, frames: list[BufferedFrame]) -> str | None:
        """None if some frame is within ``clip_max_gap_s`` of the alarm; else why the clip would not show it."""
        alarm_at = pending.started_at
        reach = timedelta(seconds=self.options.clip_max_gap_s)
        if any(abs(frame.captured_at - alarm_at) <= reach for frame in frames):
            return None
        state = pending.stream_at_alarm
        if state.stream is not StreamState.LIVE:
            cause = f"camera stream {state.stream.value} at the alarm: {state.reason or 'no reason known'}"
        else:
            cause = f"no frame within {self.options.clip_max_gap_s:g} s of the alarm at {alarm_at.isoformat()}"
        before = [frame.captured_at for frame in frames if frame.captured_at < alarm_at]
        after = [frame.captured_at for frame in frames if frame.captured_at > alarm_at]
        gap_from = before[-1].isoformat() if before else "before the pre-roll"
        gap_to = after[0].isoformat() if after else "after the post-roll"
        return f"{cause}; no frames from {gap_from} to {gap_to}"

    # ------------------------------------------------------------------ reporting

    def _report_problem(self, alarm_id: str, kind: EvidenceKind, problem: str) -> None:
        self.problems += 1
        log.warning("camera %s: no %s for alarm %s: %s", self.camera_id, kind, alarm_id, problem)
        self._enqueue(alarm_id, kind, lambda: self._uploader.enqueue_problem(alarm_id, kind, problem))

    def _enqueue(self, alarm_id: str, kind: str, action: Callable[[], str]) -> None:
        try:
            action()
        except UploadError as exc:
            log.error("camera %s: could not queue %s of alarm %s: %s", self.camera_id, kind, alarm_id, exc)
