"""The backend's staff REST API as a librarian uses it: set up the library a test needs, read back its loans.

Every write is an API call a desk would make (no SQL): patrons with a PIN and
cards, items with their RFID tag UIDs, loans and returns at the desk, holds,
fines. Reads are what the assertions need: open loans, holds, item status.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx

TIMEOUT_S = 20.0  # argon2 PIN hashing and a loaded machine


class LibraryApiError(AssertionError):
    """The backend refused a set-up call the test relies on."""


class Library:
    def __init__(self, base_url: str, username: str, password: str) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=TIMEOUT_S)
        self._call("POST", "/api/login", json={"username": username, "password": password})

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise LibraryApiError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else None

    # ------------------------------------------------------------------ setting up

    def patron(self, patron_id: str, *, pin: str | None = None, name: str = "Bạn đọc thử",
               email: str | None = None, expires_on: date | None = None, category: str = "adult") -> dict[str, Any]:
        body: dict[str, Any] = {"patron_id": patron_id, "name": name, "category": category, "pin": pin,
                                "email": email, "expires_on": expires_on.isoformat() if expires_on else None}
        return self._call("POST", "/api/patrons", json={key: value for key, value in body.items()
                                                         if value is not None})

    def item(self, item_id: str, title: str, author: str = "", *, tags: tuple[str, ...] = (),
             **fields: Any) -> dict[str, Any]:
        """An item with one tag UID per part (in part order)."""
        body = {"item_id": item_id, "title": title, "author": author, "parts": max(1, len(tags)),
                "tags": [{"uid": uid, "part": part} for part, uid in enumerate(tags, start=1)], **fields}
        return self._call("POST", "/api/items", json=body)

    def lend(self, item_id: str, patron_id: str) -> dict[str, Any]:
        """A checkout at the desk."""
        return self._call("POST", "/api/loans", json={"item_id": item_id, "patron_barcode": patron_id})

    def take_back(self, item_id: str) -> dict[str, Any]:
        """A return at the desk."""
        return self._call("POST", "/api/returns", json={"item_id": item_id})

    def hold(self, patron_id: str, item_id: str) -> dict[str, Any]:
        return self._call("POST", "/api/holds", json={"patron_id": patron_id, "item_id": item_id})

    def fine(self, patron_id: str, amount: Decimal, description: str = "") -> dict[str, Any]:
        return self._call("POST", "/api/fines", json={"patron_id": patron_id, "amount": str(amount),
                                                      "description": description})

    # ------------------------------------------------------------------ reading back

    def loans(self, *, patron_id: str | None = None, item_id: str | None = None) -> list[dict[str, Any]]:
        """Open loans (the API's own filter; up to 200, more than any test makes)."""
        params = {key: value for key, value in (("patron_id", patron_id), ("item_id", item_id)) if value}
        return self._call("GET", "/api/loans", params={**params, "limit": 200})["loans"]

    def loaned_items(self, patron_id: str) -> set[str]:
        return {loan["item_id"] for loan in self.loans(patron_id=patron_id)}

    def loan_of(self, item_id: str) -> dict[str, Any] | None:
        loans = self.loans(item_id=item_id)
        assert len(loans) <= 1, f"{item_id} has {len(loans)} open loans"
        return loans[0] if loans else None

    def holds(self, patron_id: str) -> list[dict[str, Any]]:
        return self._call("GET", "/api/holds", params={"patron_id": patron_id})

    def item_status(self, item_id: str) -> str:
        return str(self._call("GET", f"/api/items/{item_id}")["status"])

    def account(self, patron_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/patrons/{patron_id}/account")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
