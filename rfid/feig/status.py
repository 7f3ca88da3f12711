"""STATUS byte and ISO 15693 error code tables of the FEIG ISO Host protocol."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Status(IntEnum):
    OK = 0x00
    NO_TRANSPONDER = 0x01
    DATA_FALSE = 0x02
    WRITE_ERROR = 0x03
    ADDRESS_ERROR = 0x04
    WRONG_TRANSPONDER_TYPE = 0x05
    EEPROM_FAILURE = 0x10
    PARAMETER_RANGE_ERROR = 0x11
    FIRMWARE_ACTIVATION_REQUIRED = 0x17
    UNKNOWN_COMMAND = 0x80
    LENGTH_ERROR = 0x81
    COMMAND_NOT_AVAILABLE = 0x82
    RF_COMMUNICATION_ERROR = 0x83
    RF_WARNING = 0x84
    NO_VALID_DATA = 0x92
    DATA_BUFFER_OVERFLOW = 0x93
    MORE_DATA = 0x94
    ISO_ERROR = 0x95


@dataclass(frozen=True)
class StatusInfo:
    name: str
    meaning: str
    confirmed: bool  # wording found in a FEIG manual (False: go-feig naming)


STATUS_TABLE: dict[int, StatusInfo] = {
    0x00: StatusInfo("OK", "command executed", True),
    0x01: StatusInfo("No transponder", "no transponder in the field, muted, or link to it lost", True),
    0x02: StatusInfo("Data false", "CRC error in data received from the transponder", True),
    0x03: StatusInfo("Write error", "read-only area, transponder too far away, or noise", True),
    0x04: StatusInfo("Address error", "block address outside the transponder memory", True),
    0x05: StatusInfo("Wrong transponder type", "command not applicable to this transponder type", True),
    0x10: StatusInfo("EEPROM failure", "reader EEPROM failure", True),
    0x11: StatusInfo("Parameter range error", "configuration value out of range", True),
    0x17: StatusInfo("Firmware activation required", "reader firmware must be activated", False),
    0x80: StatusInfo("Unknown command", "the reader does not know this command", False),
    0x81: StatusInfo("Length error", "protocol (length) error in the request", False),
    0x82: StatusInfo("Command not available", "command not available in the current mode", False),
    0x83: StatusInfo("RF communication error", "error on the air interface; data may follow", False),
    0x84: StatusInfo("RF warning", "RF warning", False),
    0x92: StatusInfo("No valid data", "no valid data", False),
    0x93: StatusInfo("Data buffer overflow", "data buffer overflow", False),
    0x94: StatusInfo("More data", "more data than fit one answer; repeat with MORE = 1", True),
    0x95: StatusInfo("ISO error", "transponder returned an ISO 15693 error; next byte = ISO-ERROR", True),
}

STATUSES_WITH_DATA = frozenset({0x00, 0x83, 0x84, 0x93, 0x94, 0x95})

ISO_ERROR_TABLE: dict[int, str] = {
    0x01: "command not supported",
    0x02: "command not recognised",
    0x03: "option not supported",
    0x0F: "unknown error",
    0x10: "block does not exist",
    0x11: "block already locked",
    0x12: "block locked, cannot change",
    0x13: "program (write) failed",
    0x14: "lock failed",
}

ISO_ERROR_BLOCK_LOCKED = 0x12
ISO_ERROR_ALREADY_LOCKED = 0x11
ISO_ERROR_PROGRAM_FAILED = 0x13
ISO_ERROR_NOT_SUPPORTED = 0x01


def describe_status(status: int) -> str:
    """Human-readable 'XX Name (meaning)' for logs and exceptions."""
    info = STATUS_TABLE.get(status)
    if info is None:
        return f"0x{status:02X} unknown status"
    return f"0x{status:02X} {info.name} ({info.meaning})"


def describe_iso_error(code: int) -> str:
    if 0xA0 <= code <= 0xDF:
        return f"0x{code:02X} custom (manufacturer-specific) error"
    return f"0x{code:02X} {ISO_ERROR_TABLE.get(code, 'unknown ISO 15693 error')}"
