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

from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
    """Cameras authenticate uploads with their broker secret; resolve them now to fail early."""
    resolved: dict[str, SecretStr] = {}
    for camera in site.cameras:
        value = site.secret_of(camera.id)
        if value:
            resolved[camera.id] = SecretStr(value)
        else:
            log.warning("camera %s has no secret; its evidence uploads will be refused", camera.id)
    return resolved
