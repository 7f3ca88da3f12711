"""What every request handler may use, built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

from sqlalchemy.orm import Session, sessionmaker

from backend.circulation_runtime import CirculationParts
from backend.config import BackendServiceConfig
from backend.gate_view import GateView
from backend.notifier import AlarmNotifier
from backend.passwords import Passwords
from backend.rate_limit import LoginRateLimiter
from backend.sessions import SessionCodec


class GateControl(Protocol):
    """The part of the gate service the HTTP side uses."""

    @property
    def connected(self) -> bool: ...

    def silence(self, gate_id: str, alarm_id: str | None) -> None: ...


@dataclass(frozen=True)
class BackendContext:
    config: BackendServiceConfig
    sessions: sessionmaker[Session]
    passwords: Passwords
    codec: SessionCodec
    limiter: LoginRateLimiter
    view: GateView
    notifier: AlarmNotifier
    gate: GateControl | None
    clock: Callable[[], datetime]
    circulation: CirculationParts

    @property
    def secure_cookies(self) -> bool:
        return (self.config.backend.public_url or "").startswith("https://")
