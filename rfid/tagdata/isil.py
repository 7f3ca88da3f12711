"""ISIL helpers shared by the encoders and the CLI.

An ISIL is "<prefix>-<library code>", the prefix usually an ISO 3166 alpha-2
country code ("DK-710100", "VN-HN0001").  ISO 28560-3 stores the country and the
library code in separate fields.
"""

from __future__ import annotations

import re

from .errors import EncodeError

_COUNTRY = re.compile(r"[A-Z]{2}")
_ISIL_PREFIX = re.compile(r"([A-Z]{2})-(.*)", re.DOTALL)


def is_country_code(value: str) -> bool:
    return _COUNTRY.fullmatch(value) is not None


def country_of_isil(isil: str) -> str | None:
    """The two-letter country prefix of ``isil``, or ``None`` if it has none."""
    match = _ISIL_PREFIX.fullmatch(isil)
    return match.group(1) if match else None


def join_isil(country: str | None, library: str | None) -> str | None:
    """Full ISIL from the ISO 28560-3 fields; the library code alone if no country."""
    if not library:
        return None
    return f"{country}-{library}" if country else library


def split_isil(isil: str | None, country: str | None) -> tuple[str | None, str | None]:
    """``(country, library code)`` from a full or country-less ISIL plus an optional country.

    ``split_isil("VN-HN0001", None) == ("VN", "HN0001")``;
    ``split_isil("HN0001", "VN") == ("VN", "HN0001")``.
    """
    if country is not None and not is_country_code(country):
        raise EncodeError(f"country must be two upper-case letters (ISO 3166 alpha-2), got {country!r}")
    if not isil:
        return country, None
    match = _ISIL_PREFIX.fullmatch(isil)
    if match is None:
        return country, isil
    prefix, library = match.groups()
    if country is not None and prefix != country:
        raise EncodeError(f"ISIL {isil!r} has country prefix {prefix!r} but country {country!r} was given")
    if not library:
        raise EncodeError(f"ISIL {isil!r} has no library code after the country prefix")
    return prefix, library


def full_isil(isil: str | None, country: str | None) -> str | None:
    """Full ISIL from a possibly country-less ISIL and an optional country."""
    prefix, library = split_isil(isil, country)
    return join_isil(prefix, library)
