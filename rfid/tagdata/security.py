"""A tag's security state: AFI values and the NXP EAS bit.

Defaults follow go-feig, pyrfidgeek and dp2: AFI 0x07 = in the library and
secured (the gate alarms), AFI 0xC2 = on loan / not secured.  Sites with other
values (3M installations use 0xD7/0xDA, and public sources contradict each other
on which is which) configure :class:`AfiPolicy`; check at the site's gate.

Write a new state only after the ILS confirmed the loan or return, then read it
back and retry; that sequencing belongs to the RFID service, not here.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import InvalidInputError

AFI_SECURED = 0x07
AFI_UNSECURED = 0xC2


class AfiPolicy(BaseModel):
    """Which AFI values mean "secured" and "not secured" at a site."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secured_afi: int = Field(default=AFI_SECURED, ge=0, le=0xFF)
    unsecured_afi: int = Field(default=AFI_UNSECURED, ge=0, le=0xFF)
    use_eas: bool = False  # the site's gates also alarm on the NXP EAS bit

    @model_validator(mode="after")
    def _distinct_values(self) -> AfiPolicy:
        if self.secured_afi == self.unsecured_afi:
            raise ValueError("secured_afi and unsecured_afi must differ")
        return self


class SecurityState(StrEnum):
    SECURED = "secured"
    UNSECURED = "unsecured"
    UNKNOWN = "unknown"  # an AFI value the policy does not name, and no usable EAS bit
    INCONSISTENT = "inconsistent"  # AFI and EAS disagree (a half-finished write?)


def _check_afi(afi: int) -> int:
    if not isinstance(afi, int) or isinstance(afi, bool) or not 0 <= afi <= 0xFF:
        raise InvalidInputError(f"AFI must be an integer 0-255, got {afi!r}")
    return afi


def afi_state(afi: int, policy: AfiPolicy | None = None) -> SecurityState:
    """What ``afi`` means under ``policy`` (default: 0x07 secured, 0xC2 unsecured)."""
    policy = policy or AfiPolicy()
    _check_afi(afi)
    if afi == policy.secured_afi:
        return SecurityState.SECURED
    if afi == policy.unsecured_afi:
        return SecurityState.UNSECURED
    return SecurityState.UNKNOWN


def is_secured(afi: int, policy: AfiPolicy | None = None) -> bool:
    """True only for the policy's "secured" AFI value."""
    return afi_state(afi, policy) is SecurityState.SECURED


def afi_for(secured: bool, policy: AfiPolicy | None = None) -> int:
    """The AFI value to write for the wanted state."""
    policy = policy or AfiPolicy()
    return policy.secured_afi if secured else policy.unsecured_afi


def security_state(afi: int | None, eas: bool | None = None, policy: AfiPolicy | None = None) -> SecurityState:
    """Combined state of AFI and (if the policy uses it) the EAS bit; either may be unknown (``None``)."""
    policy = policy or AfiPolicy()
    from_afi = SecurityState.UNKNOWN if afi is None else afi_state(afi, policy)
    if not policy.use_eas or eas is None:
        return from_afi
    from_eas = SecurityState.SECURED if eas else SecurityState.UNSECURED
    if from_afi is SecurityState.UNKNOWN or from_afi is from_eas:
        return from_eas
    return SecurityState.INCONSISTENT
