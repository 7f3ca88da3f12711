"""What the kiosk reads from the backend over HTTP: item titles for display, a patron's receipt address.

Only opaque ids travel over MQTT; a title is not patron data, so the kiosk
fetches it from the catalogue endpoint and keeps it (titles rarely change). The
kiosk authenticates as itself (HTTP Basic, ``kiosk_id:secret``).

Assumed endpoints (provided by the backend):

* ``GET /api/catalog/items/{item_id}`` → ``{"item_id", "title", "author", "parts"}``
* ``GET /api/kiosk/sessions/{session_id}/email`` → ``{"email": "..."}`` (404 without one)
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger(__name__)

_CACHE_SIZE = 5000


class BackendHttpError(Exception):
    """The backend could not be reached over HTTP or answered something unusable."""


class ItemSummary(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # the backend may add fields; we show these

    item_id: str
    title: str = ""
    author: str = ""
    parts: int = 1


class _EmailAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    email: str


@dataclass(frozen=True)
class HttpCredentials:
    username: str
    password: str | None

    def header(self) -> str | None:
        if self.password is None:
            return None
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


class BackendHttp:
    """Blocking JSON GETs with a short timeout; call them off the UI thread."""

    def __init__(self, base_url: str, credentials: HttpCredentials, timeout_s: float = 2.0) -> None:
        self._base = base_url.rstrip("/")
        self._credentials = credentials
        self._timeout_s = timeout_s

    def get_json(self, path: str) -> Any | None:
        """The decoded body, or None for 404; raises BackendHttpError for anything else."""
        request = urllib.request.Request(self._base + path, headers={"Accept": "application/json"})
        header = self._credentials.header()
        if header:
            request.add_header("Authorization", header)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise BackendHttpError(f"GET {path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BackendHttpError(f"GET {path}: {exc}") from None


class TitleCatalog:
    """Item titles for display, cached; unknown or unreachable gives None (the screen shows the id)."""

    def __init__(self, http: BackendHttp) -> None:
        self._http = http
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, ItemSummary] = OrderedDict()

    def cached(self, item_id: str) -> ItemSummary | None:
        with self._lock:
            return self._cache.get(item_id)

    def lookup(self, item_id: str) -> ItemSummary | None:
        found = self.cached(item_id)
        if found is not None:
            return found
        path = "/api/catalog/items/" + urllib.parse.quote(item_id, safe="")
        try:
            body = self._http.get_json(path)
            summary = None if body is None else ItemSummary.model_validate(body)
        except (BackendHttpError, ValidationError) as exc:
            log.info("no title for %s: %s", item_id, exc)
            return None
        if summary is not None:
            with self._lock:
                self._cache[item_id] = summary
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return summary


class ReceiptAddressBook:
    """The e-mail address of the patron of a backend session (never cached, never logged)."""

    def __init__(self, http: BackendHttp) -> None:
        self._http = http

    def address_of(self, session_id: str) -> str | None:
        path = f"/api/kiosk/sessions/{urllib.parse.quote(session_id, safe='')}/email"
        body = self._http.get_json(path)
        if body is None:
            return None
        try:
            return _EmailAnswer.model_validate(body).email
        except ValidationError as exc:
            raise BackendHttpError(f"GET {path}: unexpected answer") from exc
