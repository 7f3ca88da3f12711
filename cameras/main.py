"""Composition root of the camera service process."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from cameras.live import LivePusher
from cameras.retention import RetentionSweeper
from cameras.service import CameraService
from cameras.source import SourceError, make_source, redact_credentials
from cameras.tuning import CameraTuning
from cameras.uploader import Uploader
from openshelf.config import ConfigError
from openshelf.contract import Kind
from openshelf.runtime import announce_ready, device_link, stop_event_on_signals
from openshelf.site import SiteConfig, load_site

log = logging.getLogger(__name__)


def camera_data_dir(site: SiteConfig, site_path: Path, camera_id: str) -> Path:
    """``<data_dir>/cameras/<camera_id>``; a relative data_dir is relative to the site file's folder."""
    return site.resolved_data_dir(site_path.resolve().parent) / "cameras" / camera_id


def run_camera(site_path: Path, camera_id: str, stop: threading.Event | None = None) -> int:
    """Run one camera until SIGINT/SIGTERM (or ``stop``, for callers off the main thread)."""
    site_path = Path(site_path)
    try:
        site = load_site(site_path)
        settings = site.camera(camera_id)
        secret = site.secret_of(camera_id)
        tuning = CameraTuning.of(settings)
        source = make_source(settings.source, fps=settings.fps, width=settings.width, height=settings.height,
                             open_timeout_s=tuning.open_timeout_s, read_timeout_s=tuning.read_timeout_s,
                             jpeg_passthrough=tuning.jpeg_passthrough, h264_passthrough=tuning.h264_passthrough)
        evidence_options, grabber_settings, live_options = tuning.evidence(), tuning.grabber(), tuning.live()
    except (ConfigError, SourceError, ValueError) as exc:
        print(f"openshelf camera: {exc}", file=sys.stderr)
        return 2
    stop = stop or stop_event_on_signals()
    data_dir = camera_data_dir(site, site_path, camera_id)
    sweeper = RetentionSweeper(data_dir, tuning.retention(site.backend.evidence_retention_days))
    uploader = Uploader(data_dir / "spool", site.backend.url, camera_id, secret)
    link = device_link(site, Kind.CAMERA, camera_id)
    service = CameraService(link, settings, source, uploader, site.site, evidence_dir=data_dir / "evidence",
                            root=site.broker.root, options=evidence_options, grabber_settings=grabber_settings)
    live = LivePusher(camera_id, service.ring, site.backend.url, secret, live_options)
    sweeper.start()
    uploader.start()
    # Subscribe before connecting: the link replays its subscriptions on every connect, so
    # none can slip between a connect and a late subscribe.
    service.start()
    link.start(wait_s=None)
    live.start()
    announce_ready(camera=camera_id, source=redact_credentials(settings.source), data_dir=str(data_dir),
                   retention_days=sweeper.max_age.days, live_fps=live_options.fps)
    try:
        stop.wait()
    finally:
        live.stop()
        service.stop()
        link.stop()
        uploader.stop()
        sweeper.stop()
    return 0
