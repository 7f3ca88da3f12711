"""Argon2id password (and PIN) hashing."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and verify secrets; verifying for an unknown user still costs one full verification."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def burn_time(self, secret: str) -> None:
        """Spend what a real verification would, so unknown usernames cannot be told apart by timing."""
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self._hasher.hash("openshelf-dummy-password")
            dummy = self._dummy
        self.verify(dummy, secret)
