"""The backend's view of a site file: where its database, media and secrets are.

Everything the backend needs from ``site.yaml`` is resolved here once, at start,
so a missing or placeholder secret stops the service with a clear message
instead of failing at the first camera upload or login.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from backend.circulation.config import CirculationSettings
from openshelf.config import ConfigError
from openshelf.site import (
    MIN_SECRET_LENGTH,
    PLACEHOLDER_SECRETS,
    BackendSettings,
    BrokerSettings,
    GatePolicySettings,
    SiteConfig,
    load_site,
    resolve_secret,
)

log = logging.getLogger(__name__)

SESSION_KEY_FILE = "session.key"
DATABASE_FILE = "openshelf.db"
MEDIA_DIR = "media"


class BackendServiceConfig(BaseModel):
    """Everything the backend process needs, resolved and validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_config: SiteConfig = Field(repr=False)  # holds inline demo secrets
    data_dir: Path
    database_url: SecretStr
    media_dir: Path
    session_secret: SecretStr
    device_secrets: dict[str, SecretStr]
    circulation: CirculationSettings = CirculationSettings()

    @property
    def site(self) -> str:
        return self.site_config.site

    @property
    def demo(self) -> bool:
        return self.site_config.demo

    @property
    def broker(self) -> BrokerSettings:
        return self.site_config.broker

    @property
    def backend(self) -> BackendSettings:
        return self.site_config.backend

    @property
    def gate_policy(self) -> GatePolicySettings:
        return self.site_config.backend.gate_policy

    @property
    def camera_ids(self) -> frozenset[str]:
        return frozenset(camera.id for camera in self.site_config.cameras)

    @property
    def kiosk_ids(self) -> frozenset[str]:
        return frozenset(kiosk.id for kiosk in self.site_config.kiosks)

    def device_secret(self, device_id: str) -> str | None:
        """The HTTP credential of a device, or None if it has none (it then cannot upload)."""
        secret = self.device_secrets.get(device_id)
        return secret.get_secret_value() if secret is not None else None

    def alarm_duration_ms(self, gate_id: str) -> int | None:
        for gate in self.site_config.gates:
            if gate.id == gate_id:
                return gate.alarm_duration_ms
        return None


def load_backend_config(site_path: Path) -> BackendServiceConfig:
    """Read the site file and resolve the backend's part of it (data_dir is relative to the file)."""
    site_path = Path(site_path)
    site = load_site(site_path)
    return backend_config_for(site, site.resolved_data_dir(site_path.resolve().parent))


def backend_config_for(site: SiteConfig, data_dir: Path) -> BackendServiceConfig:
    media_dir = data_dir / MEDIA_DIR
    return BackendServiceConfig(
        site_config=site,
        data_dir=data_dir,
        database_url=SecretStr(_database_url(site, data_dir)),
        media_dir=media_dir,
        session_secret=SecretStr(_session_secret(site, data_dir)),
        device_secrets=_device_secrets(site),
        circulation=circulation_settings(site),
    )


def _database_url(site: SiteConfig, data_dir: Path) -> str:
    try:
        url = resolve_secret(site.backend.database_url)
    except ValueError as exc:
        raise ConfigError(f"backend.database_url: {exc}") from None
    return url or f"sqlite:///{data_dir / DATABASE_FILE}"


def _session_secret(site: SiteConfig, data_dir: Path) -> str:
    try:
        value = resolve_secret(site.backend.session_secret)
    except ValueError as exc:
        raise ConfigError(f"backend.session_secret: {exc}") from None
    if value is not None and value not in PLACEHOLDER_SECRETS and len(value) >= MIN_SECRET_LENGTH:
        return value
    if not site.demo:
        raise ConfigError(
            "backend.session_secret: a real secret of at least "
            f"{MIN_SECRET_LENGTH} characters is required outside the demo (use env:NAME or file:/path)"
        )
    return _demo_session_key(data_dir)


def _demo_session_key(data_dir: Path) -> str:
    """A demo keeps its generated key, so staff stay logged in across restarts."""
    path = data_dir / SESSION_KEY_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the demo session key: {exc.strerror}") from exc
    if len(existing) >= MIN_SECRET_LENGTH:
        return existing
    key = secrets.token_urlsafe(32)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the demo session key: {exc.strerror}") from exc
    log.info("generated a demo session key in %s", path)
    return key


def _device_secrets(site: SiteConfig) -> dict[str, SecretStr]:
    """Cameras (uploads) and kiosks (catalogue reads) authenticate over HTTP with their broker secret;
    resolve them now to fail early."""
    resolved: dict[str, SecretStr] = {}
    for device in (*site.cameras, *site.kiosks):
        value = site.secret_of(device.id)
        if value:
            resolved[device.id] = SecretStr(value)
        else:
            log.warning("%s has no secret; it cannot authenticate over HTTP", device.id)
    return resolved


# --------------------------------------------------------------------------- circulation


def circulation_settings(site: SiteConfig) -> CirculationSettings:
    """``backend.circulation`` validated; outside the demo its credentials must be real."""
    try:
        settings = CirculationSettings.model_validate(site.backend.circulation)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "backend.circulation")) from None
    if settings.sip2 is not None:
        _check_sip2_password(settings, demo=site.demo)
    if settings.server is not None and not site.demo:
        _check_terminals(settings)
    return settings


def _describe(exc: ValidationError, prefix: str) -> str:
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in (prefix, *error["loc"]))
        problems.append(f"{path}: {error['msg']}")
    return "; ".join(problems)


def _check_sip2_password(settings: CirculationSettings, *, demo: bool) -> None:
    assert settings.sip2 is not None
    try:
        password = settings.sip2.resolved_password()
    except ValueError as exc:
        raise ConfigError(f"backend.circulation.sip2.password: {exc}") from None
    if demo or settings.sip2.user_id is None:
        return
    if password is None or password in PLACEHOLDER_SECRETS:
        raise ConfigError("backend.circulation.sip2.password: the library system's SIP2 password is missing or a "
                          "placeholder; outside the demo give the real one (env:NAME or file:/path)")


def _check_terminals(settings: CirculationSettings) -> None:
    """OpenShelf's SIP2 server outside the demo: real terminal logins only, no well-known passwords."""
    assert settings.server is not None
    if not settings.server.terminals:
        raise ConfigError("backend.circulation.server.terminals: at least one terminal login (user_id and an "
                          "argon2 password_hash) is required outside the demo")
    hasher = PasswordHasher()
    for index, terminal in enumerate(settings.server.terminals):
        for guess in (*PLACEHOLDER_SECRETS, terminal.user_id):
            if _verifies(hasher, terminal.password_hash, guess):
                raise ConfigError(f"backend.circulation.server.terminals.{index}.password_hash: terminal "
                                  f"{terminal.user_id!r} has a placeholder password; set a real one")


def _verifies(hasher: PasswordHasher, password_hash: str, guess: str) -> bool:
    try:
        return hasher.verify(password_hash, guess)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
