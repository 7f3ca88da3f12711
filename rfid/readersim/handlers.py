"""What a FEIG HF reader does with each [0xB0]/[0xB1] request, on a simulated field."""

from __future__ import annotations

from collections.abc import Callable

from rfid.feig import answers, commands
from rfid.feig.commands import CONTROL_CUSTOM, CONTROL_ISO15693, MFR_NXP, IsoCommand, NxpCommand, ParsedRequest
from rfid.feig.errors import FeigCodecError
from rfid.feig.status import (
    ISO_ERROR_ALREADY_LOCKED,
    ISO_ERROR_BLOCK_LOCKED,
    ISO_ERROR_NOT_SUPPORTED,
    ISO_ERROR_PROGRAM_FAILED,
    Status,
)
from rfid.readersim.field import Reply, TagField
from rfid.readersim.tags import VirtualTag

WriteFailurePicker = Callable[[], "str | None"]


class CommandHandler:
    def __init__(
        self,
        field: TagField,
        take_write_failure: WriteFailurePicker,
        *,
        only_new_tags: bool,
        max_tags_per_answer: int,
        reverse_block_bytes: bool,
    ) -> None:
        self._field = field
        self._take_write_failure = take_write_failure
        self._only_new_tags = only_new_tags
        self._max_tags = max_tags_per_answer
        self._reverse = reverse_block_bytes
        self._iso: dict[int, Callable[[ParsedRequest], bytes]] = {
            IsoCommand.INVENTORY: self._inventory,
            IsoCommand.READ_MULTIPLE_BLOCKS: self._read_blocks,
            IsoCommand.WRITE_MULTIPLE_BLOCKS: self._write_blocks,
            IsoCommand.RESET_TO_READY: self._reset_to_ready,
            IsoCommand.WRITE_AFI: self._write_afi,
            IsoCommand.LOCK_AFI: self._lock_afi,
            IsoCommand.GET_SYSTEM_INFORMATION: self._system_info,
        }
        self._nxp: dict[int, Callable[[ParsedRequest], bytes]] = {
            NxpCommand.SET_EAS: lambda request: self._write_eas(request, True),
            NxpCommand.RESET_EAS: lambda request: self._write_eas(request, False),
            NxpCommand.LOCK_EAS: self._lock_eas,
            NxpCommand.EAS_ALARM: self._eas_alarm,
        }

    def handle(self, control: int, payload: bytes) -> tuple[int, bytes]:
        """(STATUS, DATA) for one request."""
        if control not in (CONTROL_ISO15693, CONTROL_CUSTOM):
            return Status.UNKNOWN_COMMAND, b""
        try:
            request = commands.parse_request(control, payload)
            table = self._iso if control == CONTROL_ISO15693 else self._nxp_table(request)
            handler = table.get(request.command)
            if handler is None:
                return Status.UNKNOWN_COMMAND, b""
            return Status.OK, handler(request)
        except Reply as reply:
            return reply.status, reply.data
        except FeigCodecError:
            return Status.LENGTH_ERROR, b""

    def _nxp_table(self, request: ParsedRequest) -> dict[int, Callable[[ParsedRequest], bytes]]:
        if request.mfr != MFR_NXP:
            raise Reply(Status.COMMAND_NOT_AVAILABLE)  # only NXP custom commands are simulated
        return self._nxp

    # ---- [0xB0] ----------------------------------------------------------------------------

    def _inventory(self, request: ParsedRequest) -> bytes:
        more, afi = commands.parse_inventory_mode(request.mode, request.params)
        field = self._field
        if not more:
            if not self._only_new_tags:
                field.quiet.clear()  # ONT=0: RF reset before every inventory
            found = [tag for tag in field.ready_tags() if afi is None or tag.afi == afi]
            if self._only_new_tags:
                field.quiet.update(tag.uid for tag in found)
            field.pending_inventory = found
        page, field.pending_inventory = (
            field.pending_inventory[: self._max_tags],
            field.pending_inventory[self._max_tags :],
        )
        if not page:
            raise Reply(Status.NO_TRANSPONDER)
        data = answers.encode_inventory(
            [answers.InventoryRecord(tr_type=t.tr_type, dsfid=t.dsfid, uid=t.uid) for t in page]
        )
        if field.pending_inventory:
            raise Reply(Status.MORE_DATA, data)
        return data

    def _read_blocks(self, request: ParsedRequest) -> bytes:
        tag = self._field.target(request)
        first, count = commands.parse_read_params(request.params)
        _check_range(tag, first, count)
        blocks = [self._air_order(tag.block(i)) for i in range(first, first + count)]
        return answers.encode_read_blocks(tag.block_size, blocks)

    def _write_blocks(self, request: ParsedRequest) -> bytes:
        tag = self._field.target(request)
        first, count, size, data = commands.parse_write_params(request.params)
        if size != tag.block_size:
            raise Reply(Status.PARAMETER_RANGE_ERROR)
        _check_range(tag, first, count)
        failure = self._take_write_failure()
        written = count // 2 if failure == "lift" else (0 if failure == "error" else count)
        for i in range(written):
            tag.write_block(first + i, self._air_order(data[i * size : (i + 1) * size]))
        if failure == "lift":
            self._field.remove(tag.uid)
            raise Reply(Status.WRITE_ERROR, bytes((first + written,)))
        if failure == "error":
            raise Reply(Status.ISO_ERROR, bytes((ISO_ERROR_PROGRAM_FAILED, first)))
        return b""

    def _reset_to_ready(self, request: ParsedRequest) -> bytes:
        if request.uid is not None:
            self._field.quiet.discard(self._field.target(request).uid)
            return b""
        if not self._field.present:
            raise Reply(Status.NO_TRANSPONDER)
        self._field.quiet.clear()
        return b""

    def _write_afi(self, request: ParsedRequest) -> bytes:
        if len(request.params) != 1:
            raise Reply(Status.LENGTH_ERROR)
        afi = request.params[0]
        # Non-addressed Write AFI reaches every ready tag in the field, as on real readers.
        targets = [self._field.target(request)] if request.uid is not None else self._field.ready_tags()
        if not targets:
            raise Reply(Status.NO_TRANSPONDER)
        for tag in targets:
            self._apply_write_failure(tag)
            if tag.afi_locked:
                raise Reply(Status.ISO_ERROR, bytes((ISO_ERROR_BLOCK_LOCKED,)))
            tag.afi = afi
        return b""

    def _lock_afi(self, request: ParsedRequest) -> bytes:
        tag = self._field.target(request)
        if tag.afi_locked:
            raise Reply(Status.ISO_ERROR, bytes((ISO_ERROR_ALREADY_LOCKED,)))
        tag.afi_locked = True
        return b""

    def _system_info(self, request: ParsedRequest) -> bytes:
        tag = self._field.target(request)
        return answers.encode_system_info(
            answers.SystemInfoRecord(
                dsfid=tag.dsfid,
                uid=tag.uid,
                afi=tag.afi,
                block_size=tag.block_size,
                block_count=tag.block_count,
                ic_ref=tag.ic_ref,
            )
        )

    # ---- [0xB1] NXP ------------------------------------------------------------------------

    def _write_eas(self, request: ParsedRequest, enabled: bool) -> bytes:
        tag = self._nxp_target(request)
        self._apply_write_failure(tag)
        if tag.eas_locked:
            raise Reply(Status.ISO_ERROR, bytes((ISO_ERROR_BLOCK_LOCKED,)))
        tag.eas = enabled
        return b""

    def _lock_eas(self, request: ParsedRequest) -> bytes:
        tag = self._nxp_target(request)
        if tag.eas_locked:
            raise Reply(Status.ISO_ERROR, bytes((ISO_ERROR_ALREADY_LOCKED,)))
        tag.eas_locked = True
        return b""

    def _eas_alarm(self, request: ParsedRequest) -> bytes:
        if request.uid is not None:
            candidates = [self._field.present[request.uid]] if request.uid in self._field.present else []
        else:
            candidates = self._field.ready_tags()
        if any(tag.is_nxp and tag.eas for tag in candidates):
            return b""
        raise Reply(Status.NO_TRANSPONDER)

    def _nxp_target(self, request: ParsedRequest) -> VirtualTag:
        tag = self._field.target(request)
        if not tag.is_nxp:
            raise Reply(Status.ISO_ERROR, bytes((ISO_ERROR_NOT_SUPPORTED,)))
        return tag

    # ---- helpers ---------------------------------------------------------------------------

    def _apply_write_failure(self, tag: VirtualTag) -> None:
        failure = self._take_write_failure()
        if failure == "lift":
            self._field.remove(tag.uid)
            raise Reply(Status.WRITE_ERROR)
        if failure == "error":
            raise Reply(Status.ISO_ERROR, bytes((ISO_ERROR_PROGRAM_FAILED,)))

    def _air_order(self, block: bytes) -> bytes:
        return block[::-1] if self._reverse else block


def _check_range(tag: VirtualTag, first: int, count: int) -> None:
    if count < 1 or first + count > tag.block_count:
        raise Reply(Status.ADDRESS_ERROR)
