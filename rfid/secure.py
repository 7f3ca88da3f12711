"""Secure / unsecure one tag: write the AFI (and EAS), read it back, retry with backoff.

The answer is ``ok`` only when a read-back after the write shows the wanted
state; a write the reader acknowledged but the tag does not show is a
``verify_failed``, never a success. Failures that another attempt cannot cure
(a locked AFI) end the retries at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable, TypeVar

from openshelf.contract import SecureTagRequest, TagWriteOutcome

from rfid.drivers.base import (
    AfiLockedError,
    ReaderDriver,
    ReaderError,
    ReaderLinkDown,
    ReaderTimeout,
    TagNotFound,
    TagWriteError,
)
from rfid.tagdata import AfiPolicy, afi_for

log = logging.getLogger(__name__)

T = TypeVar("T")

NXP_MANUFACTURER = 0x04  # EAS is an NXP custom command; other tags have no EAS bit


@dataclass(frozen=True)
class WriteResult:
    outcome: TagWriteOutcome
    attempts: int = 0
    afi: int | None = None
    eas: bool | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is TagWriteOutcome.DONE

    @property
    def retryable(self) -> bool:
        return self.outcome not in (TagWriteOutcome.DONE, TagWriteOutcome.AFI_LOCKED)


class _Failed(Exception):
    def __init__(self, result: WriteResult) -> None:
        super().__init__(result.detail)
        self.result = result


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    backoff_s: float = 0.05

    def delay_before(self, attempt: int) -> float:
        """Backoff before attempt ``attempt`` (2, 3, ...): backoff, then doubling."""
        return self.backoff_s * 2 ** (attempt - 2)


class SecureTagWriter:
    """Carries out SecureTagRequests on a driver the caller owns (call it from the driver's thread)."""

    def __init__(self, driver: ReaderDriver, policy: AfiPolicy, retry: RetryPolicy,
                 wait: Callable[[float], object]) -> None:
        self._driver = driver
        self._policy = policy
        self._retry = retry
        self._wait = wait

    def execute(self, request: SecureTagRequest) -> WriteResult:
        uid = bytes.fromhex(request.uid)
        result = WriteResult(TagWriteOutcome.WRITE_ERROR)
        attempts = self._retry.retries + 1
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self._wait(self._retry.delay_before(attempt))
            result = replace(self._attempt(uid, request.secure), attempts=attempt)
            if not result.retryable or attempt == attempts:
                break
            log.info("securing %s (secure=%s), attempt %d: %s (%s); retrying", request.uid, request.secure,
                     attempt, result.outcome.value, result.detail)
        if not result.ok:
            log.warning("could not %s tag %s after %d attempt(s): %s (%s)",
                        "secure" if request.secure else "unsecure", request.uid, result.attempts,
                        result.outcome.value, result.detail)
        return result

    # ------------------------------------------------------------------ one attempt

    def _attempt(self, uid: bytes, secure: bool) -> WriteResult:
        wanted_afi = afi_for(secure, self._policy)
        with_eas = self._policy.use_eas and uid[1] == NXP_MANUFACTURER
        try:
            locked = self._write_afi(uid, wanted_afi)
            if with_eas:
                _guard("write EAS", lambda: self._driver.set_eas(uid, secure))
            return self._verify(uid, wanted_afi, secure if with_eas else None, locked=locked)
        except _Failed as failed:
            return failed.result

    def _write_afi(self, uid: bytes, afi: int) -> bool:
        """Write the AFI; True if the tag refused because its AFI is locked (checked by the read-back)."""
        try:
            _guard("write AFI", lambda: self._driver.write_afi(uid, afi))
        except _AfiLocked:
            return True
        return False

    def _verify(self, uid: bytes, wanted_afi: int, wanted_eas: bool | None, *, locked: bool) -> WriteResult:
        info = _guard("read back", lambda: self._driver.system_info(uid))
        if info.afi != wanted_afi:
            if locked:
                return WriteResult(TagWriteOutcome.AFI_LOCKED, afi=info.afi,
                                   detail=f"the AFI is locked at 0x{info.afi:02X}; wanted 0x{wanted_afi:02X}")
            return WriteResult(TagWriteOutcome.VERIFY_FAILED, afi=info.afi,
                               detail=f"read back AFI 0x{info.afi:02X}, wanted 0x{wanted_afi:02X}")
        eas = None
        if wanted_eas is not None:
            eas = _guard("read back EAS", lambda: self._driver.eas_state(uid))
            if eas != wanted_eas:
                return WriteResult(TagWriteOutcome.VERIFY_FAILED, afi=info.afi, eas=eas,
                                   detail=f"read back EAS {'set' if eas else 'clear'}")
        detail = "the AFI is locked but already holds the wanted value" if locked else None
        return WriteResult(TagWriteOutcome.DONE, afi=info.afi, eas=eas, detail=detail)


class _AfiLocked(Exception):
    pass


def _guard(step: str, action: Callable[[], T]) -> T:
    """Run one driver call; map its error onto the outcome the requester is told."""
    try:
        return action()
    except AfiLockedError as exc:
        raise _AfiLocked(str(exc)) from exc
    except TagNotFound as exc:
        raise _Failed(WriteResult(TagWriteOutcome.TAG_GONE, detail=f"{step}: the tag did not answer")) from exc
    except TagWriteError as exc:
        raise _Failed(WriteResult(TagWriteOutcome.WRITE_ERROR, detail=f"{step}: {exc}")) from exc
    except (ReaderTimeout, ReaderLinkDown) as exc:
        raise _Failed(WriteResult(TagWriteOutcome.READER_UNREACHABLE, detail=f"{step}: {exc}")) from exc
    except ReaderError as exc:
        raise _Failed(WriteResult(TagWriteOutcome.WRITE_ERROR, detail=f"{step}: {exc}")) from exc
