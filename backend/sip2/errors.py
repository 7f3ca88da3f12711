"""Exceptions of the SIP2 layer; every one is a :class:`Sip2Error`."""

from __future__ import annotations


class Sip2Error(Exception):
    """Base class of every SIP2 error."""


class Sip2FrameError(Sip2Error, ValueError):
    """Bytes that are not a well-formed SIP2 message (truncated fixed fields, bad code, too long)."""


class Sip2UnsupportedMessage(Sip2FrameError):
    """A well-formed frame with a message code this implementation does not handle."""

    def __init__(self, code: str) -> None:
        super().__init__(f"unsupported SIP2 message code {code!r}")
        self.code = code


class Sip2ChecksumError(Sip2FrameError):
    """The AZ checksum is missing (when required), not hexadecimal, or does not match the bytes."""


class Sip2EncodeError(Sip2Error, ValueError):
    """A message model cannot be written as SIP2 (e.g. a fixed field of the wrong length)."""


class Sip2ConnectionError(Sip2Error, ConnectionError):
    """The library system could not be reached, or the connection broke.

    ``maybe_processed`` is True when the request had been sent before the break,
    so the server may have acted on it: do not blindly resend a checkout.
    """

    def __init__(self, text: str, *, maybe_processed: bool = False) -> None:
        super().__init__(text)
        self.maybe_processed = maybe_processed


class Sip2Timeout(Sip2ConnectionError, TimeoutError):
    """No complete answer arrived within the timeout."""


class Sip2LoginError(Sip2Error):
    """The library system refused the login (93/94)."""


class Sip2ProtocolError(Sip2Error):
    """The library system answered, but not as SIP2 requires (wrong message, repeated checksum errors)."""
