"""Camera tuning: defaults until the site model has a field, the site's value once it has."""

from __future__ import annotations

from cameras.tuning import CameraTuning
from openshelf.site import CameraSettings


class FutureCameraSettings(CameraSettings):
    """CameraSettings as it will be once the tuning fields are in the site model."""

    post_event_s: float = 8.0
    live_fps: float = 0.0
    retention_days: int | None = 14


def test_defaults_apply_to_fields_the_site_model_lacks():
    tuning = CameraTuning.of(CameraSettings(id="cam1", source="synthetic://"))
    assert tuning == CameraTuning()
    assert (tuning.evidence().pre_s, tuning.evidence().post_s) == (5.0, 5.0)
    assert tuning.live().fps == 1.0 and tuning.grabber().stale_after_s == 3.0
    assert tuning.retention(site_default_days=30) == 30


def test_fields_the_site_model_has_are_taken_from_it():
    tuning = CameraTuning.of(FutureCameraSettings(id="cam1", source="synthetic://"))
    assert tuning.evidence().post_s == 8.0
    assert tuning.live().fps == 0.0
    assert tuning.retention(site_default_days=30) == 14
