"""Staff sessions: a signed, expiring cookie naming the user and a fingerprint of their password hash.

Changing a password (or re-hashing it) therefore ends every session of that user.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "openshelf_session"
DEFAULT_MAX_AGE_S = 12 * 3600  # one long shift


@dataclass(frozen=True)
class SessionClaim:
    username: str
    fingerprint: str


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class SessionCodec:
    def __init__(self, secret: str, max_age_s: int = DEFAULT_MAX_AGE_S) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="openshelf-staff-session")
        self.max_age_s = max_age_s

    def issue(self, username: str, password_hash: str) -> str:
        return self._serializer.dumps({"u": username, "f": fingerprint(password_hash)})

    def read(self, token: str) -> SessionClaim | None:
        try:
            data = self._serializer.loads(token, max_age=self.max_age_s)
        except BadSignature:  # also covers SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("f"), str):
            return None
        return SessionClaim(data["u"], data["f"])
