"""The site file: one YAML describing a whole library (broker, database, devices).

Each service reads the same file and takes its own part of it through a
service configuration model (``backend.config``, ``gate_controller.config`` …).
Secrets may be written inline (demo only), or as ``env:NAME`` / ``file:/path``
references; outside a demo site a missing or placeholder secret is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openshelf.config import ConfigError, load_model

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "password", "admin", "demo", "sc1", "1234"}
MIN_SECRET_LENGTH = 12
SIM_USER = "sim"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def known_time_zone(name: str | None) -> str | None:
    """``name`` itself when it is an IANA time zone this machine knows (None passes: the host's zone)."""
    if name is not None:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Ho_Chi_Minh)") from None
    return name


def resolve_secret(reference: str | None) -> str | None:
    """Turn ``env:NAME`` / ``file:/path`` into the secret's value; plain text stays as is."""
    if reference is None:
        return None
    if reference.startswith("env:"):
        name = reference[4:]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    if reference.startswith("file:"):
        try:
            return Path(reference[5:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {reference[5:]}: {exc.strerror}") from exc
    return reference


class BrokerSettings(Strict):
    """Where the MQTT broker is. ``url`` None means: start the embedded broker (demo)."""

    url: str | None = None
    root: str = Field(default="openshelf", pattern=ID_PATTERN)
    keepalive_s: int = Field(default=15, ge=5, le=300)
    max_reconnect_delay_s: float = Field(default=5.0, gt=0, le=5.0)
    ca_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url or "mqtt://127.0.0.1:1883").hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url or "mqtt://127.0.0.1:1883")
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url or "").scheme == "mqtts"


class DeviceBase(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    secret: str | None = Field(
        default=None,
        description="this device's broker password and HTTP credential (env:NAME or file:/path)",
    )


class GateIoSettings(Strict):
    profile: str = "moxa-e1214"
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = 9600
    unit: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=0.5, gt=0, le=5)
    retries: int = Field(default=1, ge=0, le=5)


class LocalDecisionSettings(Strict):
    """How a gate decides on its own when the backend does not answer in time."""

    secured_afis: list[int] = Field(default_factory=lambda: [0x07], description="AFI values that mean 'not on loan'")
    alarm_on_eas: bool = True
    unknown_tag: Literal["alarm", "log"] = "alarm"


class GateSettings(DeviceBase):
    io: GateIoSettings = GateIoSettings()
    alarm_duration_ms: int = Field(default=3000, ge=100, le=60_000)
    alarm_pattern: str | None = Field(default=None, description="alarm pattern name or file (steady if unset)")
    decision_deadline_ms: int = Field(default=150, ge=10, le=5000,
                                      description="how long the gate waits for the backend before deciding itself")
    group_window_ms: int = Field(default=500, ge=0, le=10_000,
                                 description="reads this close together at one gate make one alarm")
    local_decision: LocalDecisionSettings = LocalDecisionSettings()
    beam_poll_ms: int = Field(default=50, ge=10, le=1000)
    count_people: bool = True


class ReaderSettings(DeviceBase):
    gate: str | None = Field(default=None, description="the gate this reader watches, if any")
    role: Literal["gate", "pad"] = "gate"
    port: str = Field(description="serial device or pyserial URL, e.g. /dev/ttyUSB0 or socket://127.0.0.1:7001")
    profile: str = "feig-mr101"
    poll_interval_ms: int = Field(default=100, ge=10, le=5000)
    departed_after_ms: int = Field(default=1000, ge=50, le=60_000)
    secured_afi: int = Field(default=0x07, ge=0, le=0xFF, description="AFI written when an item is secured "
                             "(on the shelf); keep it equal to the gates' local_decision.secured_afis")
    unsecured_afi: int = Field(default=0xC2, ge=0, le=0xFF, description="AFI written when an item goes on loan")
    set_eas: bool = Field(default=False, description="also set / reset the NXP EAS bit when securing / unsecuring")
    write_retries: int = Field(default=2, ge=0, le=10,
                               description="extra attempts after a failed or unverified security write")
    write_backoff_ms: int = Field(default=50, ge=0, le=5000,
                                  description="wait before the first retry; it doubles for every further retry")
    set_wait_ms: int = Field(default=5000, ge=0, le=60_000,
                             description="how long a multi-part item's set may stay incomplete before it is final")
    patron_cards: bool | None = Field(default=None, description="publish ISO 15693 patron cards (ISO 28560 usage "
                                      "'patron card') as card_presented; unset: pads do, gates do not")
    offline_afi_filter: bool = Field(default=True, description="gate readers: while the backend is offline, "
                                     "inventory only tags carrying secured_afi")

    @model_validator(mode="after")
    def _distinct_afis(self) -> "ReaderSettings":
        if self.secured_afi == self.unsecured_afi:
            raise ValueError("secured_afi and unsecured_afi must differ")
        return self

    @property
    def publishes_patron_cards(self) -> bool:
        """Pads publish patron cards; gates do not (a gate would otherwise track patrons' movements)."""
        return self.role == "pad" if self.patron_cards is None else self.patron_cards


class CameraSettings(DeviceBase):
    gates: list[str] = Field(default_factory=list)
    source: str = Field(description="synthetic://, rtsp://…, http://… (MJPEG), /dev/videoN or a video file")
    fps: float = Field(default=10.0, gt=0, le=60)
    width: int = Field(default=1280, ge=16, le=7680)
    height: int = Field(default=720, ge=16, le=4320)
    pre_event_s: float = Field(default=5.0, ge=1, le=30)
    post_event_s: float = Field(default=5.0, ge=1, le=60)
    jpeg_quality: int = Field(default=85, ge=50, le=100)
    jpeg_passthrough: bool = Field(default=True, description="keep an MJPEG camera's own JPEGs, no re-encoding")
    h264_passthrough: bool = Field(default=True, description="keep an H.264 camera's own packets (MP4 clips), "
                                                             "decode only for snapshots and the live view")
    open_timeout_s: float = Field(default=5.0, gt=0, le=60)
    read_timeout_s: float = Field(default=5.0, gt=0, le=60)
    stale_after_s: float = Field(default=3.0, ge=0.5, le=60)
    live_fps: float = Field(default=1.0, ge=0, le=5, description="live-view frames per second; 0 = off")
    live_width: int = Field(default=640, ge=16, le=1920)
    live_jpeg_quality: int = Field(default=70, ge=1, le=100)
    retention_days: int | None = Field(default=None, ge=1, le=3650,
                                       description="local evidence retention; default backend.evidence_retention_days")


class PrinterSettings(Strict):
    kind: Literal["none", "escpos-serial", "escpos-usb", "escpos-file"] = "none"
    device: str | None = Field(default=None, description="serial port, USB vendor:product, or a file path")
    baudrate: int = 19200
    codepage: Literal["transliterate", "cp1258"] = "transliterate"


class SmtpSettings(Strict):
    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = Field(default=None, description="env:NAME or file:/path")
    sender: str


class KioskSettings(DeviceBase):
    pad_reader: str | None = Field(default=None, description="the reader id of the kiosk's item pad")
    card_reader: str | None = Field(default=None, description="the reader id that presents patron cards (NFC/HF)")
    language: Literal["vi", "en"] = "vi"
    require_pin: bool = True
    idle_timeout_s: int = Field(default=60, ge=10, le=3600)
    backend_deadline_ms: int = Field(default=3000, ge=100, le=60_000)
    offline_mode: Literal["refuse", "queue"] = "queue"
    exit_code: str | None = Field(default=None, description="technician exit code (env:NAME or file:/path)")
    fullscreen: bool = True
    printer: PrinterSettings = PrinterSettings()
    smtp: SmtpSettings | None = None


class GatePolicySettings(Strict):
    debounce_s: float = Field(default=10.0, ge=0, le=3600)
    unknown_tag: Literal["alarm", "log"] = "alarm"
    in_library_only_alarms: bool = True


class BackendSettings(Strict):
    id: str = Field(default="backend", pattern=ID_PATTERN)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="how devices reach the backend over HTTP")
    database_url: str | None = None
    session_secret: str | None = None
    secret: str | None = Field(default=None, description="the backend's own broker password")
    gate_policy: GatePolicySettings = GatePolicySettings()
    evidence_retention_days: int = Field(default=30, ge=1, le=3650)
    timezone: str | None = Field(default=None,
                                 description="IANA zone of the library's clock, e.g. Asia/Ho_Chi_Minh; None = the host's")
    day_starts_at_hour: int = Field(default=0, ge=0, le=23,
                                    description="local hour at which the day's occupancy count restarts at 0")
    circulation: dict = Field(default_factory=dict,
                              description="backend.circulation.config.CirculationSettings (validated by the backend)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return known_time_zone(value)

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class SiteConfig(Strict):
    site: str = Field(pattern=ID_PATTERN, description="site id; the third segment of every topic")
    name: str = ""
    demo: bool = Field(default=False, description="allows inline demo secrets and the embedded broker")
    data_dir: Path = Path("data")
    broker: BrokerSettings = BrokerSettings()
    backend: BackendSettings = BackendSettings()
    gates: list[GateSettings] = Field(default_factory=list)
    readers: list[ReaderSettings] = Field(default_factory=list)
    cameras: list[CameraSettings] = Field(default_factory=list)
    kiosks: list[KioskSettings] = Field(default_factory=list)
    sim_secret: str | None = Field(default=None, description="broker password of the simulators (demo sites only)")

    @model_validator(mode="after")
    def _consistent(self) -> "SiteConfig":
        ids = [device.id for device in self._devices()] + [self.backend.id]
        duplicates = sorted({value for value in ids if ids.count(value) > 1})
        if duplicates:
            raise ValueError(f"device ids must be unique; repeated: {', '.join(duplicates)}")
        gate_ids = {gate.id for gate in self.gates}
        for reader in self.readers:
            if reader.gate is not None and reader.gate not in gate_ids:
                raise ValueError(f"reader {reader.id} names unknown gate {reader.gate!r}")
        for camera in self.cameras:
            for gate in camera.gates:
                if gate not in gate_ids:
                    raise ValueError(f"camera {camera.id} names unknown gate {gate!r}")
        reader_ids = {reader.id for reader in self.readers}
        for kiosk in self.kiosks:
            for reader in (kiosk.pad_reader, kiosk.card_reader):
                if reader is not None and reader not in reader_ids:
                    raise ValueError(f"kiosk {kiosk.id} names unknown reader {reader!r}")
        if not self.demo and self.sim_secret is not None:
            raise ValueError("sim_secret is only allowed on demo sites (simulators never run in production)")
        if not self.demo and self.broker.url is None:
            raise ValueError("broker.url is required outside a demo site (the embedded broker is for demos)")
        return self

    def secret_of(self, device_id: str) -> str | None:
        """The resolved secret of a device (or the backend); refuses placeholders outside demos."""
        holder = self._device(device_id)
        try:
            value = resolve_secret(holder.secret)
        except ValueError as exc:
            raise ConfigError(f"{device_id}.secret: {exc}") from None
        if not self.demo and (value is None or value in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH):
            raise ConfigError(
                f"{device_id}.secret: a real secret of at least {MIN_SECRET_LENGTH} characters is required "
                "outside the demo (placeholders are refused)"
            )
        return value

    def _device(self, device_id: str) -> DeviceBase | BackendSettings:
        if device_id == self.backend.id:
            return self.backend
        for device in self._devices():
            if device.id == device_id:
                return device
        raise ConfigError(f"site {self.site}: no device with id {device_id!r}")

    def _devices(self) -> tuple[DeviceBase, ...]:
        return (*self.gates, *self.readers, *self.cameras, *self.kiosks)

    def kiosk(self, kiosk_id: str) -> KioskSettings:
        device = self._device(kiosk_id)
        if not isinstance(device, KioskSettings):
            raise ConfigError(f"site {self.site}: {kiosk_id!r} is not a kiosk")
        return device

    def gate(self, gate_id: str) -> GateSettings:
        device = self._device(gate_id)
        if not isinstance(device, GateSettings):
            raise ConfigError(f"site {self.site}: {gate_id!r} is not a gate")
        return device

    def reader(self, reader_id: str) -> ReaderSettings:
        device = self._device(reader_id)
        if not isinstance(device, ReaderSettings):
            raise ConfigError(f"site {self.site}: {reader_id!r} is not a reader")
        return device

    def camera(self, camera_id: str) -> CameraSettings:
        device = self._device(camera_id)
        if not isinstance(device, CameraSettings):
            raise ConfigError(f"site {self.site}: {camera_id!r} is not a camera")
        return device

    def resolved_data_dir(self, relative_to: Path | None = None) -> Path:
        if self.data_dir.is_absolute() or relative_to is None:
            return self.data_dir
        return (relative_to / self.data_dir).resolve()


def load_site(path: Path | str) -> SiteConfig:
    """Load a site file; a relative ``data_dir`` is taken relative to the file's folder."""
    path = Path(path)
    site = load_model(SiteConfig, path)
    if not site.data_dir.is_absolute():
        site = site.model_copy(update={"data_dir": (path.parent / site.data_dir).resolve()})
    return site
