"""Where OpenShelf finds its shipped files."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def firmware_dir() -> Path:
    """Device profiles; ``OPENSHELF_FIRMWARE_CONFIGS`` points elsewhere for a site's own profiles."""
    override = os.environ.get("OPENSHELF_FIRMWARE_CONFIGS")
    return Path(override) if override else repo_root() / "firmware_configs"
