"""`openshelf camera` arguments, the site-relative data directory, and config errors."""

from __future__ import annotations

import argparse

import yaml

from cameras.cli import register, register_sim
from cameras.main import camera_data_dir, run_camera
from openshelf.cli import build_parser
from openshelf.site import load_site


def test_camera_subcommand_takes_site_and_device(tmp_path):
    args = build_parser("camera").parse_args(["camera", "--site", str(tmp_path / "s.yaml"), "--device", "cam1"])
    assert (args.site, args.device) == (tmp_path / "s.yaml", "cam1")
    assert callable(args.func)


def test_sim_camera_options():
    parser = argparse.ArgumentParser()
    register_sim(parser)
    args = parser.parse_args(["--port", "0", "--fps", "5"])
    assert (args.port, args.fps, args.width) == (0, 5.0, 1280)
    assert callable(args.func)
    other = argparse.ArgumentParser()
    register(other)
    assert other.parse_args(["--site", "x.yaml", "--device", "c"]).device == "c"


def _site(tmp_path, camera: dict) -> object:
    path = tmp_path / "conf" / "site.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"site": "lib1", "demo": True, "data_dir": "state", "cameras": [camera]}))
    return path


def test_data_dir_is_relative_to_the_site_file(tmp_path):
    path = _site(tmp_path, {"id": "cam1", "source": "synthetic://"})
    assert camera_data_dir(load_site(path), path, "cam1") == (tmp_path / "conf" / "state" / "cameras" / "cam1")


def test_unknown_camera_or_bad_source_exits_2_with_a_message(tmp_path, capsys):
    path = _site(tmp_path, {"id": "cam1", "source": "ftp://nowhere/stream"})
    assert run_camera(path, "cam9") == 2
    assert "cam9" in capsys.readouterr().err
    assert run_camera(path, "cam1") == 2
    assert "ftp" in capsys.readouterr().err
