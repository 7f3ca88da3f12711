"""The kiosk-mode recipe in docs/kiosk-linux.md stays in step with the code it configures.

The recipe is copied onto real machines by hand, so every unit file, script and site
fragment in it must still be accepted by what it names: systemd-style INI that parses,
``openshelf`` command lines our parser accepts, YAML our site model accepts, a shell
script ``sh -n`` accepts.
"""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from openshelf.cli import build_parser
from openshelf.site import SiteConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "kiosk-linux.md"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
OPENSHELF_BIN = "/opt/openshelf/bin/openshelf"


def _blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(DOC.read_text(encoding="utf-8")) if lang == language]


def _units() -> list[configparser.ConfigParser]:
    units = []
    for body in _blocks("ini"):
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.optionxform = str  # systemd keys are case-sensitive
        parser.read_string(body)
        if parser.has_section("Service"):
            units.append(parser)
    return units


def _openshelf_commands() -> list[list[str]]:
    lines = [unit["Service"]["ExecStart"] for unit in _units()]
    lines += [line for body in _blocks("sh") for line in body.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.strip().startswith(OPENSHELF_BIN)]


def test_the_doc_has_the_units_it_describes() -> None:
    descriptions = sorted(unit["Unit"]["Description"] for unit in _units())
    assert descriptions == ["OpenShelf reader service %i", "OpenShelf self-check kiosk",
                            "OpenShelf self-check kiosk (cage on tty1)"]


def test_every_unit_restarts_and_never_gives_up() -> None:
    for unit in _units():
        assert unit["Service"]["Restart"] in {"always", "on-failure"}, unit["Unit"]["Description"]
        assert unit["Unit"]["StartLimitIntervalSec"] == "0", unit["Unit"]["Description"]


def test_the_cage_unit_restarts_on_every_exit_because_cage_hides_the_status() -> None:
    cage = next(unit for unit in _units() if "cage" in unit["Unit"]["Description"])
    assert cage["Service"]["Restart"] == "always"
    assert cage["Service"]["ExecStart"].startswith("/usr/bin/cage ")
    assert " -s " not in f' {cage["Service"]["ExecStart"]} '  # -s would allow switching to a text console
    assert cage["Service"]["User"] == "kiosk" and cage["Service"]["PAMName"] == "login"


@pytest.mark.parametrize("index", range(3))
def test_every_documented_openshelf_command_line_is_accepted(index: int) -> None:
    commands = _openshelf_commands()
    assert len(commands) == 3  # the reader unit, the session script, the desktop variant's user unit
    args = commands[index]
    parsed = build_parser(args[0]).parse_args(args)
    assert parsed.site == Path("/etc/openshelf/site.yaml")
    assert parsed.device in {"kiosk-1", "%i"}


def test_the_session_script_is_valid_shell() -> None:
    scripts = [body for body in _blocks("sh") if body.startswith("#!/bin/sh")]
    assert len(scripts) == 1
    checked = subprocess.run(["sh", "-n"], input=scripts[0], text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert "exec foot" in scripts[0] and "/run/openshelf-kiosk/stopping" in scripts[0]


def test_the_site_fragment_is_accepted_by_the_site_model() -> None:
    fragments = [yaml.safe_load(body) for body in _blocks("yaml")]
    fragment = next(item for item in fragments if isinstance(item, dict) and "kiosks" in item)
    site = SiteConfig.model_validate({"site": "lib", "broker": {"url": "mqtt://10.0.0.2:1883"}, **fragment})
    kiosk = site.kiosk("kiosk-1")
    assert kiosk.pad_reader == "reader-pad-1" and kiosk.offline_mode == "queue"
    assert kiosk.exit_code == "file:/etc/openshelf/kiosk-1.exit-code"
