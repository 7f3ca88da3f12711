"""Secure or unsecure one tag on the kiosk's pad reader, and wait for the verified answer.

The reader service writes the AFI (and EAS), reads it back and answers with
``ok=True`` only when the read-back matches. No answer within the deadline is a
failure too: the kiosk never shows '✓' for a tag it has not heard back about.
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout

from openshelf.contract import (
    Channel,
    Kind,
    SecureTagReply,
    SecureTagRequest,
    TagWriteOutcome,
    expires_in,
    topic,
)
from openshelf.mqtt import MqttLink

from kiosk.replies import ReplyWaiter

log = logging.getLogger(__name__)


class TagSecurityClient:
    def __init__(self, link: MqttLink, *, site: str, root: str, kiosk_id: str, reader_id: str,
                 deadline_s: float = 5.0) -> None:
        self._link = link
        self._reader_id = reader_id
        self._deadline_s = deadline_s
        self._command_topic = topic(site, Kind.READER, reader_id, Channel.CMD, "secure_tag", root=root)
        self.reply_topic = topic(site, Kind.KIOSK, kiosk_id, Channel.REPLY, "secure_tag", root=root)
        self._replies: ReplyWaiter[SecureTagReply] = ReplyWaiter()

    def subscribe(self) -> None:
        self._link.subscribe(self.reply_topic, SecureTagReply, self._replies.deliver)

    def set_security(self, uid: str, *, secure: bool) -> SecureTagReply:
        """Write and verify; a missing answer comes back as ``READER_UNREACHABLE`` (never raises)."""
        request = SecureTagRequest(uid=uid, secure=secure, reply_to=self.reply_topic,
                                   expires_at=expires_in(self._deadline_s))
        future = self._replies.expect(request.correlation_id)
        log.debug("secure_tag %s secure=%s (%s)", uid, secure, request.correlation_id)
        self._link.publish(self._command_topic, request)
        try:
            reply = future.result(timeout=self._deadline_s)
        except FutureTimeout:
            self._replies.forget(request.correlation_id)
            log.warning("reader %s did not answer secure_tag for %s within %.1f s", self._reader_id, uid,
                        self._deadline_s)
            return SecureTagReply(correlation_id=request.correlation_id, reader_id=self._reader_id, uid=uid,
                                  ok=False, outcome=TagWriteOutcome.READER_UNREACHABLE, attempts=0,
                                  detail="no answer from the reader")
        log.debug("secure_tag %s answered: ok=%s %s", uid, reply.ok, reply.outcome.value)
        if not reply.ok:
            log.info("secure_tag %s (secure=%s) failed: %s after %d attempt(s)", uid, secure, reply.outcome.value,
                     reply.attempts)
        return reply
