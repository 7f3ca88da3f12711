"""Which circulation a site runs: standalone (OpenShelf owns loans) or SIP2 (a library system does).

Meant to sit in the site file under ``backend.circulation``::

    circulation:
      mode: sip2
      branch: MAIN
      sip2:
        host: koha.example.org
        port: 6001
        user_id: openshelf-kiosk
        password: env:OPENSHELF_SIP2_PASSWORD
        institution_id: MAIN
        location_code: MAIN
      server:                      # optional: OpenShelf's own SIP2 server (standalone mode)
        port: 6001
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.sip2.config import Sip2ClientConfig, Sip2ServerConfig


class CirculationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["standalone", "sip2"] = "standalone"
    branch: str = Field(default="", description="this site's branch code (check-ins, transit decisions)")
    sip2: Sip2ClientConfig | None = Field(default=None, description="the library system; required in sip2 mode")
    server: Sip2ServerConfig | None = Field(default=None,
                                            description="serve the standalone circulation over SIP2 to other kiosks")

    @model_validator(mode="after")
    def _consistent(self) -> "CirculationSettings":
        if self.mode == "sip2" and self.sip2 is None:
            raise ValueError("mode 'sip2' needs a 'sip2' section (host, port, login)")
        if self.mode == "sip2" and self.server is not None:
            raise ValueError("the SIP2 server serves the standalone circulation; it cannot run in 'sip2' mode")
        offline = self.sip2.offline if self.sip2 is not None else None
        if offline is not None and offline.enabled and offline.journal_path is None:
            raise ValueError("sip2.offline.enabled needs sip2.offline.journal_path")
        return self
