"""A camera's tunable settings, turned into the options of each part of the camera service.

The fields are those of ``cameras[]`` in the site file. Any field the site
model (``openshelf.site.CameraSettings``) does not define yet keeps the default
given here, so the camera service runs the same before and after it is added.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from cameras.grabber import GrabberSettings
from cameras.live import LiveOptions
from cameras.service import EvidenceOptions
from openshelf.site import CameraSettings


@dataclass(frozen=True)
class CameraTuning:
    pre_event_s: float = 5.0
    post_event_s: float = 5.0
    jpeg_quality: int = 85
    jpeg_passthrough: bool = True
    h264_passthrough: bool = True
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    stale_after_s: float = 3.0
    live_fps: float = 1.0
    live_width: int = 640
    live_jpeg_quality: int = 70
    retention_days: int | None = None  # None: the site's backend.evidence_retention_days

    @classmethod
    def of(cls, settings: CameraSettings) -> "CameraTuning":
        defined = type(settings).model_fields
        return cls(**{field.name: getattr(settings, field.name) for field in fields(cls) if field.name in defined})

    def evidence(self) -> EvidenceOptions:
        return EvidenceOptions(pre_s=self.pre_event_s, post_s=self.post_event_s, jpeg_quality=self.jpeg_quality)

    def grabber(self) -> GrabberSettings:
        return GrabberSettings(stale_after_s=self.stale_after_s)

    def live(self) -> LiveOptions:
        return LiveOptions(fps=self.live_fps, width=self.live_width, jpeg_quality=self.live_jpeg_quality)

    def retention(self, site_default_days: int) -> int:
        return self.retention_days if self.retention_days is not None else site_default_days
