"""Exceptions of the tag data layer.

Every error raised by :mod:`rfid.tagdata` is a :class:`TagDataError`, which is a
``ValueError``: callers that only care about "this tag could not be used" catch
one type; callers that need the reason catch the specific subclass.
"""

from __future__ import annotations


class TagDataError(ValueError):
    """Base class: the bytes or the values given are not usable tag data."""


class InvalidInputError(TagDataError):
    """The caller passed something that is not tag memory (wrong type, DSFID out of range)."""


class UnknownModelError(TagDataError):
    """The memory is not blank but matches none of the supported data models."""


class UnsupportedTagError(UnknownModelError):
    """A known data model, but a version or variant this decoder does not implement."""


class CorruptTagError(TagDataError):
    """The memory claims a known data model but its content is inconsistent."""


class CrcError(CorruptTagError):
    """The layout looks like ISO 28560-3 but the CRC matches in neither block order."""


class EncodeError(TagDataError):
    """The values given cannot be written in the requested data model."""
