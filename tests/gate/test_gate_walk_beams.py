"""The scripted patron's beam sequences, counted by the gate's rule as a 20 Hz poll would see them."""

from __future__ import annotations

import pytest

from gate_controller.counting import Passage, PassageCounter
from gate_controller.io import BeamSample
from openshelf.contract import SimBeamStep
from openshelf.walk import patron_beam_steps, steps_duration_s


def counted(steps: list[SimBeamStep], poll_s: float = 0.05, phase_s: float = 0.0) -> list[str]:
    """Sample the beams the steps produce every ``poll_s`` (starting ``phase_s`` in) and count."""
    changes: list[tuple[float, str, bool]] = []
    at = 1.0
    for step in steps:
        at += step.after_ms / 1000
        changes.append((at, step.beam, step.broken))
    counter = PassageCounter()
    state = {"beam_a": False, "beam_b": False}
    passages: list[str] = []
    now = 1.0 - poll_s + phase_s
    end = at + 1.0
    while now < end:
        for when, beam, broken in changes:
            if when <= now:
                state[beam] = broken
        changes = [change for change in changes if change[0] > now]
        events = counter.feed(BeamSample(beam_a=state["beam_a"], beam_b=state["beam_b"], at=now))
        passages += [event.direction for event in events if isinstance(event, Passage)]
        now += poll_s
    return passages


@pytest.mark.parametrize("phase_s", [0.0, 0.013, 0.026, 0.049])
def test_walking_out_and_in_count_once_each_whatever_the_poll_phase(phase_s: float) -> None:
    assert counted(patron_beam_steps("out"), phase_s=phase_s) == ["out"]
    assert counted(patron_beam_steps("in"), phase_s=phase_s) == ["in"]


@pytest.mark.parametrize("phase_s", [0.0, 0.02, 0.04])
def test_a_tailgater_is_counted_as_a_second_person(phase_s: float) -> None:
    assert counted(patron_beam_steps("out", tailgate=True), phase_s=phase_s) == ["out", "out"]


def test_sequences_start_at_once_and_end_with_both_beams_clear() -> None:
    for steps in (patron_beam_steps("out"), patron_beam_steps("in", tailgate=True)):
        assert steps[0].after_ms == 0 and steps[0].broken
        last = {step.beam: step.broken for step in steps}
        assert last == {"beam_a": False, "beam_b": False}
    assert steps_duration_s(patron_beam_steps("out")) == pytest.approx(0.6)


def test_walk_refuses_contradictory_or_missing_items(tmp_path, capsys) -> None:
    from openshelf.cli import main

    site = str(tmp_path / "unused.yaml")  # the arguments are checked before the site is read
    assert main(["sim", "walk", "--site", site, "--no-items", "--item", "I0003"]) == 2
    assert main(["sim", "walk", "--site", site]) == 2
    assert "--no-items" in capsys.readouterr().out
