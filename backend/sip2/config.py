"""Configuration of a SIP2 link: the client side (to a library system) and the server side.

Secrets (the SIP2 login password) may be written as ``env:NAME`` or
``file:/path``; terminal passwords of the OpenShelf SIP2 server are stored only
as argon2 hashes (make one with :func:`hash_terminal_password`).
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.circulation.interface import Tristate
from openshelf.site import resolve_secret

Charset = Literal["utf-8", "iso-8859-1"]
Terminator = Literal["CR", "CRLF"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


class OfflineSettings(_Strict):
    """What a kiosk may do while the library system cannot be reached."""

    enabled: bool = False
    checkout: bool = True
    checkin: bool = True
    desensitize: Tristate = Field(default=Tristate.UNKNOWN,
                                  description="security instruction for offline checkouts (U = the kiosk's policy)")
    journal_path: Path | None = Field(default=None, description="JSON-lines journal; required when enabled")


class Sip2ClientConfig(_Strict):
    """How OpenShelf reaches a library system (Koha, Vietbiblio, Libol …) over SIP2."""

    host: str
    port: int = Field(default=6001, ge=1, le=65535)
    tls: bool = False
    ca_file: Path | None = Field(default=None, description="CA bundle to verify the server (system store if unset)")
    tls_verify: bool = True
    server_name: str | None = Field(default=None, description="name on the server certificate if not host")
    user_id: str | None = Field(default=None, description="93 login user (CN); None = no login")
    password: str | None = Field(default=None, description="93 login password (CO), or env:NAME / file:/path")
    location_code: str | None = Field(default=None, description="93 location (CP)")
    institution_id: str = Field(default="", description="AO on every request")
    terminal_password: str = Field(default="", description="AC on every request")
    current_location: str | None = Field(default=None, description="AP on check-in (defaults to location_code)")
    charset: Charset = "utf-8"
    terminator: Terminator = "CR"
    error_detection: bool = True
    timezone: str | None = Field(default=None, description="IANA zone of the server's local dates; host zone if unset")
    language: str = Field(default="000", min_length=3, max_length=3)
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="wait for an answer")
    keepalive_s: float = Field(default=240.0, gt=0, description="after this long idle, check the link with 99 first")
    idle_check_s: float = Field(default=0.5, ge=0,
                                description="after this long idle, look for a close the server sent before writing")
    offline: OfflineSettings = OfflineSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        _zone(value)
        return value

    def zone(self) -> tzinfo | None:
        return _zone(self.timezone)

    def resolved_password(self) -> str | None:
        return resolve_secret(self.password)


class Sip2Terminal(_Strict):
    """One SIP2 login the OpenShelf server accepts (per kiosk or per third-party vendor)."""

    user_id: str = Field(min_length=1)
    password_hash: str = Field(description="argon2 hash of the terminal password")
    location: str = Field(default="", description="branch used for check-ins when the terminal sends no AP")

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str) -> str:
        if not value.startswith("$argon2"):
            raise ValueError("must be an argon2 hash (openshelf never stores terminal passwords in clear)")
        return value


class Sip2ServerConfig(_Strict):
    """OpenShelf as a SIP2 server over its standalone circulation, for third-party kiosks."""

    host: str = "127.0.0.1"
    port: int = Field(default=6001, ge=0, le=65535, description="0 = any free port (tests)")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    terminals: tuple[Sip2Terminal, ...] = ()
    institution_id: str = ""
    library_name: str = "OpenShelf"
    charset: Charset = "utf-8"
    terminator: Terminator = "CR"
    require_error_detection: bool = False
    timezone: str | None = None
    screen_language: Literal["vi", "en"] = "vi"
    idle_timeout_s: float = Field(default=600.0, gt=0, description="drop a terminal silent this long")
    max_connections: int = Field(default=64, ge=1)
    max_frame_bytes: int = Field(default=64 * 1024, ge=256)
    max_bad_frames: int = Field(default=3, ge=1, description="consecutive unreadable frames before the reset")
    max_failed_logins: int = Field(default=3, ge=1)
    advertised_timeout_tenths: int = Field(default=100, ge=0, le=999)
    advertised_retries: int = Field(default=3, ge=0, le=999)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        _zone(value)
        return value

    def zone(self) -> tzinfo | None:
        return _zone(self.timezone)


def hash_terminal_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """The argon2 hash to put in ``Sip2Terminal.password_hash``."""
    return (hasher or PasswordHasher()).hash(password)
