"""Security state: AFI policy and the NXP EAS bit."""

import pytest
from pydantic import ValidationError

from rfid.tagdata import AfiPolicy, InvalidInputError, SecurityState, afi_for, afi_state, is_secured, security_state


def test_default_policy_values() -> None:
    assert is_secured(0x07)
    assert not is_secured(0xC2)
    assert afi_state(0xC2) is SecurityState.UNSECURED
    assert afi_state(0x00) is SecurityState.UNKNOWN
    assert not is_secured(0x00)
    assert afi_for(True) == 0x07
    assert afi_for(False) == 0xC2


def test_site_policy_overrides_the_values() -> None:
    threem_site = AfiPolicy(secured_afi=0xDA, unsecured_afi=0xD7)
    assert is_secured(0xDA, threem_site)
    assert not is_secured(0x07, threem_site)
    assert afi_state(0xD7, threem_site) is SecurityState.UNSECURED
    assert afi_for(True, threem_site) == 0xDA


def test_policy_validation() -> None:
    with pytest.raises(ValidationError):
        AfiPolicy(secured_afi=0x07, unsecured_afi=0x07)
    with pytest.raises(ValidationError):
        AfiPolicy(secured_afi=256)
    with pytest.raises(ValidationError):
        AfiPolicy(surprise=True)  # type: ignore[call-arg]
    assert AfiPolicy.model_validate({"secured_afi": 0x07, "unsecured_afi": 0xC2, "use_eas": True}).use_eas


@pytest.mark.parametrize("afi", [-1, 256, True, "7"])
def test_invalid_afi_is_an_input_error(afi: object) -> None:
    with pytest.raises(InvalidInputError, match="AFI"):
        afi_state(afi)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("afi", "eas", "use_eas", "expected"),
    [
        (0x07, None, False, SecurityState.SECURED),
        (0x07, False, False, SecurityState.SECURED),  # EAS ignored unless the site uses it
        (0x07, True, True, SecurityState.SECURED),
        (0xC2, False, True, SecurityState.UNSECURED),
        (0x07, False, True, SecurityState.INCONSISTENT),
        (0xC2, True, True, SecurityState.INCONSISTENT),
        (0x42, True, True, SecurityState.SECURED),  # unknown AFI: the EAS bit decides
        (None, False, True, SecurityState.UNSECURED),
        (None, None, True, SecurityState.UNKNOWN),
    ],
)
def test_combined_security_state(afi: int | None, eas: bool | None, use_eas: bool, expected: SecurityState) -> None:
    assert security_state(afi, eas, AfiPolicy(use_eas=use_eas)) is expected
