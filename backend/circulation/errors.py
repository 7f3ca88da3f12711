"""Exceptions of the circulation layer.

A refused checkout is not an exception: it is a decision with a reason code.
These errors mean the caller asked something malformed (a naive timestamp, an
unknown rule field) or the store could not complete a transaction.
"""

from __future__ import annotations


class CirculationError(Exception):
    """Base class of every error raised by :mod:`backend.circulation`."""


class InvalidRequestError(CirculationError, ValueError):
    """The arguments cannot describe a circulation request (e.g. a naive datetime)."""


class StoreError(CirculationError):
    """The store could not read or commit; the transaction was rolled back."""
