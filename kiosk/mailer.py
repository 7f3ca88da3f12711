"""E-mailing a receipt over SMTP (STARTTLS by default), off the UI thread.

The address comes from the backend for the current session only when the
patron asks (see ``kiosk.backend_http.ReceiptAddressBook``); it is used for this
one message and never stored or logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from openshelf.site import SmtpSettings, resolve_secret

from kiosk.receipt import Receipt

log = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 10.0


class MailError(Exception):
    """The receipt could not be handed to the SMTP server."""


class ReceiptMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def build(self, receipt: Receipt, recipient: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = recipient
        message["Subject"] = f"{receipt.library} — {receipt.heading}"
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=self._settings.sender.rpartition("@")[2] or None)
        message.set_content(receipt.as_text(), charset="utf-8")
        return message

    def send(self, receipt: Receipt, recipient: str) -> None:
        message = self.build(receipt, recipient)
        settings = self._settings
        try:
            password = resolve_secret(settings.password)
        except ValueError as exc:
            raise MailError(f"smtp.password: {exc}") from None
        try:
            with smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_S) as smtp:
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if settings.username:
                    smtp.login(settings.username, password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP {settings.host}:{settings.port}: {exc}") from exc
        log.info("receipt e-mailed via %s", settings.host)
