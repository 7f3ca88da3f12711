"""``backend.circulation`` in the site file: validated with the field named; no default credential in production."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher

from backend.config import load_backend_config
from backend.sip2_service import sip2_server_settings
from openshelf.config import ConfigError
from tests.backend.backend_testkit import write_site

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def production_site(tmp_path: Path, circulation: dict) -> Path:
    path = write_site(tmp_path, site_id="lib1", demo=False, secret="backend-broker-secret",
                      session_secret="a-real-session-secret-0123", circulation=circulation)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for device in (*data["gates"], *data["readers"]):
        device["secret"] = f"{device['id']}-real-secret"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("circulation, field", [
    ({"mode": "sip3"}, "backend.circulation.mode"),
    ({"mode": "sip2", "sip2": {"host": "koha", "port": 99999}}, "backend.circulation.sip2.port"),
    ({"server": {"port": 6001, "surprise": True}}, "backend.circulation.server.surprise"),
    ({"mode": "sip2"}, "backend.circulation"),
])
def test_bad_settings_name_the_field(tmp_path: Path, circulation: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_backend_config(write_site(tmp_path, site_id="lib1", circulation=circulation))


def test_production_refuses_placeholder_or_missing_sip2_passwords(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"mode": "sip2", "sip2": {"host": "koha.example.org", "user_id": "openshelf"}}
    with pytest.raises(ConfigError, match=r"sip2\.password"):
        load_backend_config(production_site(tmp_path, base))
    with pytest.raises(ConfigError, match=r"sip2\.password"):
        load_backend_config(production_site(tmp_path, {**base, "sip2": {**base["sip2"], "password": "changeme"}}))
    with pytest.raises(ConfigError, match=r"sip2\.password.*NOT_SET_ANYWHERE"):
        load_backend_config(production_site(tmp_path, {**base, "sip2": {**base["sip2"],
                                                                        "password": "env:NOT_SET_ANYWHERE"}}))
    monkeypatch.setenv("TEST_SIP2_PASSWORD", "koha-sip-password-42")
    config = load_backend_config(production_site(tmp_path, {**base, "sip2": {**base["sip2"],
                                                                             "password": "env:TEST_SIP2_PASSWORD"}}))
    assert config.circulation.mode == "sip2" and sip2_server_settings(config) is None


def test_production_sip2_server_needs_real_terminal_logins(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.terminals"):
        load_backend_config(production_site(tmp_path, {"server": {"port": 6001}}))
    sc1 = {"user_id": "sc1", "password_hash": CHEAP.hash("sc1")}
    with pytest.raises(ConfigError, match=r"server\.terminals\.0\.password_hash"):
        load_backend_config(production_site(tmp_path, {"server": {"port": 6001, "terminals": [sc1]}}))
    own_name = {"user_id": "kiosk-vendor", "password_hash": CHEAP.hash("kiosk-vendor")}
    with pytest.raises(ConfigError, match="placeholder"):
        load_backend_config(production_site(tmp_path, {"server": {"port": 6001, "terminals": [own_name]}}))
    real = {"user_id": "kiosk-vendor", "password_hash": CHEAP.hash("a-long-vendor-secret")}
    config = load_backend_config(production_site(tmp_path, {"server": {"port": 6002, "terminals": [real]}}))
    settings = sip2_server_settings(config)
    assert settings is not None and settings.port == 6002
    assert [terminal.user_id for terminal in settings.terminals] == ["kiosk-vendor"]  # no sc1 outside the demo


def test_production_without_a_server_section_serves_no_sip2(tmp_path: Path) -> None:
    assert sip2_server_settings(load_backend_config(production_site(tmp_path, {}))) is None
