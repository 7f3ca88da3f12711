from pathlib import Path

import pytest

from openshelf.config import ConfigError, load_model
from openshelf.site import SiteConfig, load_site

MINIMAL = """
site: hn
broker: {url: "mqtt://127.0.0.1:1883"}
backend: {secret: "env:OS_BACKEND_SECRET"}
gates:
  - id: gate-1
    secret: "file:{secret_file}"
    io: {profile: moxa-e1214, host: 10.0.0.5, port: 502}
readers:
  - {id: r1, gate: gate-1, port: "socket://127.0.0.1:7001", secret: "short"}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_and_resolves_secret_references(tmp_path, monkeypatch):
    secret_file = tmp_path / "gate.secret"
    secret_file.write_text("a-long-gate-secret\n")
    monkeypatch.setenv("OS_BACKEND_SECRET", "a-long-backend-secret")
    site = load_site(_write(tmp_path, MINIMAL.replace("{secret_file}", str(secret_file))))
    assert site.gate("gate-1").io.host == "10.0.0.5"
    assert site.secret_of("gate-1") == "a-long-gate-secret"
    assert site.secret_of("backend") == "a-long-backend-secret"


def test_placeholder_and_short_secrets_are_refused_outside_demo(tmp_path):
    site = load_site(_write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError, match="r1.secret"):
        site.secret_of("r1")


def test_demo_sites_accept_inline_secrets(tmp_path):
    site = load_site(_write(tmp_path, MINIMAL.replace("site: hn", "site: hn\ndemo: true")))
    assert site.secret_of("r1") == "short"


def test_errors_name_file_and_field(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("port: 502", "port: lots"))
    with pytest.raises(ConfigError) as error:
        load_site(path)
    message = str(error.value)
    assert str(path) in message
    assert "gates.0.io.port" in message
    assert "lots" in message


def test_unknown_fields_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="gates.0.colour"):
        load_site(_write(tmp_path, MINIMAL.replace("id: gate-1", "id: gate-1\n    colour: red")))


def test_environment_overrides_are_named_in_errors(tmp_path):
    path = _write(tmp_path, MINIMAL)
    site = load_model(SiteConfig, path, {"OPENSHELF__GATES__0__IO__PORT": "5020"})
    assert site.gate("gate-1").io.port == 5020
    with pytest.raises(ConfigError, match="environment OPENSHELF__GATES__0__IO__PORT"):
        load_model(SiteConfig, path, {"OPENSHELF__GATES__0__IO__PORT": "many"})


def test_cross_references_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="unknown gate"):
        load_site(_write(tmp_path, MINIMAL.replace("gate: gate-1", "gate: gate-9")))


def test_embedded_broker_only_for_demos(tmp_path):
    text = MINIMAL.replace('broker: {url: "mqtt://127.0.0.1:1883"}', "")
    with pytest.raises(ConfigError, match="broker.url is required"):
        load_site(_write(tmp_path, text))


def test_broken_yaml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_site(_write(tmp_path, "site: [unclosed"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_site(tmp_path / "nope.yaml")
