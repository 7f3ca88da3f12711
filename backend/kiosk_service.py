"""Kiosk circulation over MQTT: ``backend/<id>/cmd/circulation`` in, CirculationReply on the kiosk's reply topic.

The MQTT network thread also carries the gate path, so the handler here only
checks who is asking and puts the request on a queue; a few worker threads
answer (database or library-system transactions) and publish the replies.

A request is answered only when its ``kiosk_id`` is a kiosk of this site and
its ``reply_to`` is that kiosk's own reply topic: the backend never publishes
patron-related answers anywhere else.
"""

from __future__ import annotations

import logging
import queue
import threading

from backend.circulation.messages import ReasonCode, message
from backend.kiosk_circulation import KioskAnswers
from openshelf.contract import (
    Channel,
    CirculationReply,
    CirculationRequest,
    Kind,
    TopicError,
    TopicParts,
    topic,
)
from openshelf.mqtt import MqttLink

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 4
DEFAULT_QUEUE = 512
_STOP = object()


class KioskCirculationService:
    def __init__(self, link: MqttLink, answers: KioskAnswers, *, site_id: str, root: str, backend_id: str,
                 workers: int = DEFAULT_WORKERS, max_waiting: int = DEFAULT_QUEUE) -> None:
        self._link = link
        self._answers = answers
        self._site = site_id
        self._root = root
        self._request_topic = topic(site_id, Kind.BACKEND, backend_id, Channel.CMD, "circulation", root=root)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_waiting)
        self._worker_count = workers
        self._workers: list[threading.Thread] = []
        self.answered = 0
        self.refused_senders = 0
        self.overloaded = 0

    def start(self) -> None:
        if self._workers:
            raise RuntimeError("kiosk circulation service already started")
        self._workers = [threading.Thread(target=self._work, name=f"kiosk-circulation-{number}", daemon=True)
                         for number in range(self._worker_count)]
        for worker in self._workers:
            worker.start()
        self._link.subscribe(self._request_topic, CirculationRequest, self._on_request)

    def stop(self) -> None:
        for _ in self._workers:
            self._queue.put(_STOP)
        for worker in self._workers:
            worker.join(10)
        self._workers = []

    # ------------------------------------------------------------------ MQTT thread: check and hand over

    def _on_request(self, parts: TopicParts, request: CirculationRequest) -> None:
        reply_topic = self._reply_topic(request.kiosk_id)
        if reply_topic is None or request.reply_to != reply_topic or not self._answers.knows(request.kiosk_id):
            self.refused_senders += 1
            log.warning("ignored a circulation request from unknown kiosk %r (reply_to %r)", request.kiosk_id,
                        request.reply_to)
            return
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self.overloaded += 1
            log.warning("kiosk circulation queue full; %s from %s refused", request.op.value, request.kiosk_id)
            text = message(ReasonCode.SYSTEM_UNAVAILABLE)
            self._link.publish(reply_topic, CirculationReply(
                correlation_id=request.correlation_id, ok=False, code=ReasonCode.SYSTEM_UNAVAILABLE.value,
                message_vi=text.vi, message_en=text.en, item_id=request.item_id))

    def _reply_topic(self, kiosk_id: str) -> str | None:
        try:
            return topic(self._site, Kind.KIOSK, kiosk_id, Channel.REPLY, "circulation", root=self._root)
        except TopicError:
            return None

    # ------------------------------------------------------------------ workers

    def _work(self) -> None:
        while True:
            request = self._queue.get()
            if request is _STOP:
                return
            assert isinstance(request, CirculationRequest)
            reply = self._answers.answer(request)
            self._link.publish(request.reply_to, reply)
            self.answered += 1
            log.debug("kiosk %s %s → %s", request.kiosk_id, request.op.value, reply.code)
