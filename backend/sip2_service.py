"""OpenShelf's own SIP2 server inside the backend process, over the standalone circulation.

* Outside the demo it runs only when ``backend.circulation.server`` is configured
  (its terminal logins were checked at start: no placeholder passwords); a port
  that cannot be bound stops the backend.
* In the demo (standalone mode) it always runs, on 127.0.0.1:6001 unless
  ``circulation.server`` says otherwise, and accepts the well-known demo
  terminal login ``sc1``/``sc1`` besides any configured ones. A taken port only
  logs a warning there: the demo works without it.
"""

from __future__ import annotations

import logging

from argon2 import PasswordHasher

from backend.circulation.interface import Circulation
from backend.config import BackendServiceConfig
from backend.sip2.config import Sip2ServerConfig, Sip2Terminal
from backend.sip2.server import Sip2Server
from openshelf.config import ConfigError
from openshelf.demo_catalog import DEMO_TERMINAL_LOGIN

log = logging.getLogger(__name__)

DEMO_SIP2_PORT = 6001
# The demo password is public anyway; a cheap hash keeps the demo's start and logins quick.
_DEMO_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def sip2_server_settings(config: BackendServiceConfig) -> Sip2ServerConfig | None:
    """What the backend's SIP2 server should be, or None when it should not run."""
    settings = config.circulation
    if settings.mode != "standalone":
        return None
    if not config.demo:
        return settings.server
    server = settings.server or Sip2ServerConfig(host="127.0.0.1", port=DEMO_SIP2_PORT)
    updates: dict[str, object] = {}
    if not server.library_name or server.library_name == "OpenShelf":
        updates["library_name"] = config.site_config.name or "OpenShelf"
    user, password = DEMO_TERMINAL_LOGIN
    if all(terminal.user_id != user for terminal in server.terminals):
        demo_terminal = Sip2Terminal(user_id=user, password_hash=_DEMO_HASHER.hash(password), location=settings.branch)
        updates["terminals"] = (*server.terminals, demo_terminal)
    return server.model_copy(update=updates)


class BackendSip2Server:
    """Starts and stops the SIP2 server; in the demo a port that is taken is not fatal."""

    def __init__(self, circulation: Circulation, settings: Sip2ServerConfig, *, required: bool) -> None:
        self._server = Sip2Server(circulation, settings)
        self._required = required
        self.running = False

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> None:
        try:
            self._server.start()
        except OSError as exc:
            where = f"{self._server.config.host}:{self._server.config.port}"
            if self._required:
                raise ConfigError(f"backend.circulation.server: cannot listen on {where}: {exc.strerror or exc}")
            log.warning("demo SIP2 server not started: cannot listen on %s (%s)", where, exc.strerror or exc)
            return
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._server.stop()
            self.running = False
