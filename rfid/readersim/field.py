"""The RF field of the simulated reader: which tags are present, and which are quiet."""

from __future__ import annotations

from rfid.feig.commands import Addressing, ParsedRequest
from rfid.feig.status import Status
from rfid.readersim.tags import VirtualTag


class Reply(Exception):
    """Short-circuits command handling with a STATUS (and optional DATA)."""

    def __init__(self, status: int, data: bytes = b"") -> None:
        super().__init__(f"status 0x{status:02X}")
        self.status = status
        self.data = data


class TagField:
    """Tags in the field plus tags taken out of it (kept so tests can read them back).

    A tag reported by an inventory on an ONT=1 reader is quiet: it ignores further
    inventories and non-addressed commands until Reset to Ready or until it leaves
    and re-enters the field (power loss resets it).
    """

    def __init__(self) -> None:
        self.present: dict[bytes, VirtualTag] = {}
        self.away: dict[bytes, VirtualTag] = {}
        self.quiet: set[bytes] = set()
        self.pending_inventory: list[VirtualTag] = []

    def place(self, tag: VirtualTag) -> None:
        self.away.pop(tag.uid, None)
        self.quiet.discard(tag.uid)
        self.present[tag.uid] = tag

    def remove(self, uid: bytes) -> VirtualTag:
        tag = self.present.pop(uid, None)
        if tag is None:
            raise KeyError(f"tag {uid.hex().upper()} is not in the field")
        self.quiet.discard(uid)
        self.pending_inventory = [t for t in self.pending_inventory if t.uid != uid]
        self.away[uid] = tag
        return tag

    def find(self, uid: bytes) -> VirtualTag:
        tag = self.present.get(uid) or self.away.get(uid)
        if tag is None:
            raise KeyError(f"unknown tag {uid.hex().upper()}")
        return tag

    def ready_tags(self) -> list[VirtualTag]:
        return [tag for uid, tag in self.present.items() if uid not in self.quiet]

    def target(self, request: ParsedRequest) -> VirtualTag:
        """The one tag a [0xB0]/[0xB1] request acts on, or a Reply with the reader's STATUS."""
        if request.addressing == Addressing.ADDRESSED:
            assert request.uid is not None
            tag = self.present.get(request.uid)
            if tag is None:
                raise Reply(Status.NO_TRANSPONDER)
            return tag
        if request.addressing == Addressing.NON_ADDRESSED:
            ready = self.ready_tags()
            if not ready:
                raise Reply(Status.NO_TRANSPONDER)
            if len(ready) > 1:
                raise Reply(Status.RF_COMMUNICATION_ERROR)  # answers collide (unconfirmed status)
            return ready[0]
        raise Reply(Status.COMMAND_NOT_AVAILABLE)  # "selected" mode is not simulated
