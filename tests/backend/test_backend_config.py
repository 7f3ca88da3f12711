"""load_backend_config: paths relative to the site file, secrets, the demo session key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from backend.config import load_backend_config
from openshelf.config import ConfigError
from tests.backend.backend_testkit import CAMERA_ID, CAMERA_SECRET, write_site


def test_defaults_live_under_the_data_dir_next_to_the_site_file(tmp_path: Path) -> None:
    config = load_backend_config(write_site(tmp_path, site_id="lib1"))
    data_dir = (tmp_path / "data").resolve()
    assert config.data_dir == data_dir
    assert config.database_url.get_secret_value() == f"sqlite:///{data_dir / 'openshelf.db'}"
    assert config.media_dir == data_dir / "media"
    assert config.device_secret(CAMERA_ID) == CAMERA_SECRET
    assert config.device_secret("gate-1") is None
    assert config.alarm_duration_ms("gate-1") == 1500 and config.alarm_duration_ms("nope") is None
    assert CAMERA_SECRET not in repr(config)


def test_the_demo_session_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_backend_config(write_site(tmp_path, site_id="lib1"))
    key_file = tmp_path / "data" / "session.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    second = load_backend_config(tmp_path / "site.yaml")
    assert first.session_secret.get_secret_value() == second.session_secret.get_secret_value()
    assert len(first.session_secret.get_secret_value()) >= 32


def production_site(tmp_path: Path, **backend: object) -> Path:
    path = write_site(tmp_path, site_id="lib1", demo=False, secret="backend-broker-secret", **backend)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for device in (*data["gates"], *data["readers"]):
        device["secret"] = f"{device['id']}-real-secret"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_outside_a_demo_the_session_secret_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="session_secret"):
        load_backend_config(production_site(tmp_path))
    with pytest.raises(ConfigError, match="session_secret"):
        load_backend_config(production_site(tmp_path, session_secret="changeme"))


def test_secrets_and_the_database_url_may_be_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "session.secret"
    secret_file.write_text("a-long-session-secret-from-a-file\n", encoding="utf-8")
    monkeypatch.setenv("TEST_OPENSHELF_DB", "postgresql+psycopg://openshelf:pw@db.example/openshelf")
    config = load_backend_config(production_site(
        tmp_path, session_secret=f"file:{secret_file}", database_url="env:TEST_OPENSHELF_DB"))
    assert config.session_secret.get_secret_value() == "a-long-session-secret-from-a-file"
    assert config.database_url.get_secret_value().startswith("postgresql+psycopg://openshelf:pw@")
    assert not (tmp_path / "data" / "session.key").exists()


def test_a_missing_reference_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database_url"):
        load_backend_config(production_site(tmp_path, session_secret="x" * 20, database_url="env:NOT_SET_ANYWHERE"))
