"""The gate's I/O module as the gate service sees it: two relays out, two beams in.

The service receives an object satisfying :class:`GateIo` (the Modbus driver in
production, the same driver pointed at :mod:`gate_controller.simulator` in tests)
and never constructs hardware access itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol, runtime_checkable

OutputRole = Literal["light", "buzzer"]
BeamRole = Literal["beam_a", "beam_b"]
OUTPUT_ROLES: Final[tuple[OutputRole, ...]] = ("light", "buzzer")
BEAM_ROLES: Final[tuple[BeamRole, ...]] = ("beam_a", "beam_b")


class GateIoError(Exception):
    """The I/O module refused a request or answered something unusable."""


class GateIoLinkDown(GateIoError):
    """The I/O module cannot be reached (no connection, timeout, connection lost)."""


@dataclass(frozen=True)
class BeamSample:
    """Both beams at one instant. True = broken (polarity already applied)."""

    beam_a: bool
    beam_b: bool
    at: float  # time.monotonic() seconds


@runtime_checkable
class GateIo(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def set_outputs(self, *, light: bool | None = None, buzzer: bool | None = None) -> None:
        """Switch the relays; ``None`` leaves that relay as it is."""
        ...

    async def read_outputs(self) -> dict[str, bool]:
        """Current relay states as ``{"light": bool, "buzzer": bool}``."""
        ...

    async def read_beams(self) -> BeamSample: ...

    @property
    def link_up(self) -> bool: ...
