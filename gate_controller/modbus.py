"""Modbus access for the gate: the client driver and the small server the simulator uses.

TCP links use the lean client of :mod:`gate_controller.modbus_tcp`; serial (RTU)
links and the register-map server use pymodbus (3.16 API: ``device_id=``, keyword
``count``). Everything else talks to :class:`gate_controller.io.GateIo`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gate_controller.io import BEAM_ROLES, BeamSample, GateIoError, GateIoLinkDown, OutputRole
from gate_controller.modbus_tcp import ModbusTcpClient
from gate_controller.profile import GateIoProfile, RegisterTable

if TYPE_CHECKING:
    from openshelf.site import GateIoSettings

logger = logging.getLogger(__name__)

MAX_BITS_PER_READ = 64  # beyond this span, read points one by one instead of one wide request
MAX_REGISTERS_PER_READ = 16
LINK_ERRORS = (ConnectionException, ModbusIOException, TimeoutError, OSError)


def quiet_pymodbus_logs(level: int = logging.CRITICAL) -> None:
    """pymodbus logs every failed request itself; call from a service's main so a dead module
    produces our one "link down" line instead of a warning per poll."""
    logging.getLogger("pymodbus").setLevel(level)


# --------------------------------------------------------------------------- link settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TcpLink(_Strict):
    kind: Literal["tcp"] = "tcp"
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, description="None: the profile's default")

    def describe(self, profile: GateIoProfile) -> str:
        return f"{self.host}:{self.port or profile.defaults.port}"


class RtuLink(_Strict):
    kind: Literal["rtu"] = "rtu"
    device: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1

    def describe(self, profile: GateIoProfile) -> str:
        return f"{self.device}@{self.baudrate}"


class LinkTiming(_Strict):
    """pymodbus defaults (3 s x 3 retries) are far too slow for a gate; these suit a LAN."""

    timeout_s: float = Field(default=0.5, gt=0, le=10)
    retries: int = Field(default=1, ge=0, le=5)
    reconnect_delay_s: float = Field(default=0.1, ge=0, le=60)
    reconnect_delay_max_s: float = Field(default=5.0, ge=0, le=300)

    @property
    def request_deadline_s(self) -> float:
        """Upper bound for one request including pymodbus' own retries (guards against hangs)."""
        return self.timeout_s * (self.retries + 2)


class ReconnectBackoff:
    """Capped exponential delay between reconnect attempts; calls inside the delay fail fast."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self._first = first_s
        self._max = max(max_s, first_s)
        self._delay = first_s
        self._next_attempt_at = 0.0

    def ready(self, now: float) -> bool:
        return now >= self._next_attempt_at

    def remaining(self, now: float) -> float:
        return max(0.0, self._next_attempt_at - now)

    def failed(self, now: float) -> None:
        self._next_attempt_at = now + self._delay
        self._delay = min(self._delay * 2, self._max)

    def reset(self) -> None:
        self._delay = self._first
        self._next_attempt_at = 0.0


# --------------------------------------------------------------------------- client driver


class ModbusGateIo:
    """:class:`gate_controller.io.GateIo` over Modbus TCP (or RTU) for one I/O module."""

    def __init__(
        self,
        profile: GateIoProfile,
        link: TcpLink | RtuLink,
        *,
        unit_id: int | None = None,
        timing: LinkTiming | None = None,
    ) -> None:
        self._profile = profile
        self._link = link
        self._unit = profile.defaults.unit_id if unit_id is None else unit_id
        self._timing = timing or LinkTiming()
        self._backoff = ReconnectBackoff(self._timing.reconnect_delay_s, self._timing.reconnect_delay_max_s)
        self._lock = asyncio.Lock()  # one request at a time on this link
        self._client: ModbusTcpClient | AsyncModbusSerialClient | None = None
        self._link_up = False
        self._down_reported = False
        self._down_since: float | None = None
        self._in_flight = False
        self._closed = False
        self.description = f"{profile.model} at {link.describe(profile)} unit {self._unit}"

    @classmethod
    def tcp(
        cls,
        profile: GateIoProfile,
        host: str,
        port: int | None = None,
        *,
        unit_id: int | None = None,
        timing: LinkTiming | None = None,
    ) -> ModbusGateIo:
        return cls(profile, TcpLink(host=host, port=port), unit_id=unit_id, timing=timing)

    @classmethod
    def from_settings(cls, profile: GateIoProfile, settings: GateIoSettings) -> ModbusGateIo:
        """Build from the site file's ``gates[].io`` block."""
        link: TcpLink | RtuLink
        if settings.transport == "rtu":
            if not settings.serial_port:
                raise GateIoError("io.transport is rtu but io.serial_port is not set")
            link = RtuLink(device=settings.serial_port, baudrate=settings.baudrate)
        else:
            link = TcpLink(host=settings.host, port=settings.port)
        timing = LinkTiming(timeout_s=settings.timeout_s, retries=settings.retries)
        return cls(profile, link, unit_id=settings.unit, timing=timing)

    @property
    def profile(self) -> GateIoProfile:
        return self._profile

    @property
    def link_up(self) -> bool:
        return self._link_up

    # ---- GateIo -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the link now (ignoring the reconnect delay); raises GateIoLinkDown if unreachable."""
        async with self._lock:
            self._closed = False
            self._backoff.reset()
            await self._open()

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            self._drop_client()
            if self._link_up:
                logger.info("gate I/O %s: link closed", self.description)
            self._link_up = False

    async def set_outputs(self, *, light: bool | None = None, buzzer: bool | None = None) -> None:
        wanted: dict[OutputRole, bool] = {}
        if light is not None:
            wanted["light"] = light
        if buzzer is not None:
            wanted["buzzer"] = buzzer
        if not wanted:
            return
        by_address = {self._profile.output(role).address: value for role, value in wanted.items()}
        first = min(by_address)
        if len(by_address) == 2 and max(by_address) == first + 1:
            values = [by_address[first], by_address[first + 1]]
            await self._request(f"write coils 0x{first:04X}+2", "write_coils", first, values)
            return
        for role, value in wanted.items():
            await self._write_single(role, value)

    async def read_outputs(self) -> dict[str, bool]:
        addresses = {role: self._profile.output(role).address for role in ("light", "buzzer")}
        bits = await self._read_bits("coil", addresses.values())
        return {role: bits[address] for role, address in addresses.items()}

    async def read_beams(self) -> BeamSample:
        points = {beam: self._profile.input(beam) for beam in BEAM_ROLES}
        raw: dict[tuple[str, int], bool] = {}
        for table in sorted({point.table for point in points.values()}):
            addresses = [p.address for p in points.values() if p.table == table]
            for address, value in (await self._read_bits(table, addresses)).items():
                raw[(table, address)] = value
        broken = {beam: point.broken(raw[(point.table, point.address)]) for beam, point in points.items()}
        return BeamSample(beam_a=broken["beam_a"], beam_b=broken["beam_b"], at=time.monotonic())

    # ---- extras beyond GateIo ------------------------------------------------------------

    async def read_counters(self) -> dict[str, int]:
        """Hardware pulse counters per beam (to spot passages missed between polls)."""
        counters = self._profile.counters
        if counters is None:
            raise GateIoError(f"gate I/O {self.description}: the profile {self._profile.model!r} has no counters")
        bases = {beam: getattr(counters, beam) for beam in BEAM_ROLES}
        words = await self._read_registers(counters.table, bases.values(), width=2)
        return {beam: counters.combine(words[base]) for beam, base in bases.items()}

    async def read_di_word(self) -> int:
        di_word = self._profile.di_word
        if di_word is None:
            raise GateIoError(f"gate I/O {self.description}: the profile {self._profile.model!r} has no DI word")
        words = await self._read_registers(di_word.table, [di_word.address], width=1)
        return words[di_word.address][0]

    # ---- reads and writes ------------------------------------------------------------------

    async def _write_single(self, role: OutputRole, value: bool) -> None:
        point = self._profile.output(role)
        what = f"write {role} coil 0x{point.address:04X}"
        if point.fc == 15:
            await self._request(what, "write_coils", point.address, [value])
        else:
            await self._request(what, "write_coil", point.address, value)

    async def _read_bits(self, table: RegisterTable, addresses: Iterable[int]) -> dict[int, bool]:
        wanted = sorted(set(addresses))
        method = "read_coils" if table == "coil" else "read_discrete_inputs"
        result: dict[int, bool] = {}
        for start, count in _spans(wanted, MAX_BITS_PER_READ, width=1):
            response = await self._request(f"read {table} 0x{start:04X}+{count}", method, start, count=count)
            bits = list(response.bits)
            if len(bits) < count:
                raise GateIoError(f"gate I/O {self.description}: short answer reading {table} 0x{start:04X}")
            result.update({start + i: bool(bits[i]) for i in range(count)})
        return {address: result[address] for address in wanted}

    async def _read_registers(self, table: RegisterTable, bases: Iterable[int], *, width: int) -> dict[int, list[int]]:
        wanted = sorted(set(bases))
        result: dict[int, int] = {}
        for start, count in _spans(wanted, MAX_REGISTERS_PER_READ, width=width):
            method = "read_input_registers" if table == "input_register" else "read_holding_registers"
            response = await self._request(f"read {table} 0x{start:04X}+{count}", method, start, count=count)
            registers = list(response.registers)
            if len(registers) < count:
                raise GateIoError(f"gate I/O {self.description}: short answer reading {table} 0x{start:04X}")
            result.update({start + i: registers[i] for i in range(count)})
        return {base: [result[base + i] for i in range(width)] for base in wanted}

    # ---- link handling ---------------------------------------------------------------------

    async def _request(self, what: str, method: str, *args: Any, **kwargs: Any) -> ModbusPDU:
        """Run one pymodbus client call (by method name) under the link lock."""
        async with self._lock:
            client = await self._ensure_open()
            self._in_flight = True
            try:
                response = await self._call(client, method, *args, **kwargs)
            except LINK_ERRORS as exc:
                self._drop_client()
                self._link_lost(f"{what}: {_describe(exc)}")
                raise GateIoLinkDown(f"gate I/O {self.description}: {what} failed: {_describe(exc)}") from exc
            finally:
                self._in_flight = False
        self._link_ok()  # an exception reply still proves the module is there
        if response.isError():
            code = getattr(response, "exception_code", 0)
            raise GateIoError(f"gate I/O {self.description}: {what} refused: Modbus exception {_exception_name(code)}")
        return response

    async def _call(self, client: ModbusTcpClient | AsyncModbusSerialClient, method: str,
                    *args: Any, **kwargs: Any) -> ModbusPDU:
        call = getattr(client, method)(*args, device_id=self._unit, **kwargs)
        if isinstance(client, ModbusTcpClient):  # bounded by its own per-attempt timers: no second deadline
            return await call
        async with asyncio.timeout(self._timing.request_deadline_s):  # guards against pymodbus hanging
            return await call

    async def _ensure_open(self) -> ModbusTcpClient | AsyncModbusSerialClient:
        if self._closed:
            raise GateIoError(f"gate I/O {self.description}: closed")
        if self._client is not None and self._client.connected:
            return self._client
        now = time.monotonic()
        if not self._backoff.ready(now):
            raise GateIoLinkDown(
                f"gate I/O {self.description}: link down, next reconnect in {self._backoff.remaining(now):.2f} s"
            )
        return await self._open()

    async def _open(self) -> ModbusTcpClient | AsyncModbusSerialClient:
        client = self._client or self._new_client()
        self._client = client
        try:
            connected = await client.connect()
        except LINK_ERRORS as exc:
            connected, reason = False, _describe(exc)
        else:
            reason = "cannot connect"
        if not connected:
            client.close()
            self._backoff.failed(time.monotonic())
            self._link_lost(reason)
            raise GateIoLinkDown(f"gate I/O {self.description}: {reason}")
        self._link_ok()
        return client

    def _new_client(self) -> ModbusTcpClient | AsyncModbusSerialClient:
        timing = self._timing
        if isinstance(self._link, TcpLink):
            port = self._link.port or self._profile.defaults.port
            return ModbusTcpClient(self._link.host, port, timeout=timing.timeout_s, retries=timing.retries,
                                   trace_connect=self._on_connection_change)
        link = self._link
        return AsyncModbusSerialClient(
            link.device, framer=FramerType.RTU, baudrate=link.baudrate, parity=link.parity,
            bytesize=link.bytesize, stopbits=link.stopbits, timeout=timing.timeout_s, retries=timing.retries,
            reconnect_delay=0,  # reconnecting is ours (with backoff), not pymodbus' background task
            trace_connect=self._on_connection_change,
        )

    def _on_connection_change(self, connected: bool) -> None:
        if connected:
            return
        self._link_lost("connection closed by the module or the network")
        if self._in_flight:
            self._fail_pending_request()

    def _fail_pending_request(self) -> None:
        """pymodbus waits out its full timeout x retries when the peer closes mid-request;
        failing its response future makes a reset connection fail at once instead."""
        ctx = getattr(self._client, "ctx", None)
        future = getattr(ctx, "response_future", None)
        if isinstance(future, asyncio.Future) and not future.done():
            future.set_exception(ConnectionException("connection lost during request"))

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            if isinstance(self._link, RtuLink):
                self._client = None  # a fresh serial client re-opens the device cleanly
        self._backoff.failed(time.monotonic())

    def _link_lost(self, reason: str) -> None:
        was_up = self._link_up
        self._link_up = False
        if self._down_reported:
            return
        self._down_reported = True
        self._down_since = time.monotonic()
        if was_up:
            logger.warning("gate I/O %s: link down (%s)", self.description, reason)
        else:
            logger.warning("gate I/O %s: cannot reach the module (%s)", self.description, reason)

    def _link_ok(self) -> None:
        if self._link_up:
            return
        self._link_up = True
        self._backoff.reset()
        if self._down_since is not None:
            logger.info("gate I/O %s: link restored after %.1f s", self.description, time.monotonic() - self._down_since)
        else:
            logger.info("gate I/O %s: link up", self.description)
        self._down_reported = False
        self._down_since = None


def _spans(addresses: list[int], max_span: int, *, width: int) -> list[tuple[int, int]]:
    """Group sorted addresses into (start, count) reads no wider than ``max_span`` items."""
    spans: list[tuple[int, int]] = []
    for address in addresses:
        end = address + width
        if spans and end - spans[-1][0] <= max_span:
            start, _ = spans[-1]
            spans[-1] = (start, end - start)
        else:
            spans.append((address, width))
    return spans


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _exception_name(code: int) -> str:
    try:
        return f"{code:02d} {ExcCodes(code).name.lower()}"
    except ValueError:
        return f"{code:02d}"


# --------------------------------------------------------------------------- register-map server

CoilObserver = Callable[[int, bool, int], None]  # (address, value, time.monotonic_ns())
BIT_TABLES: tuple[RegisterTable, ...] = ("coil", "discrete_input")
REGISTER_TABLES: tuple[RegisterTable, ...] = ("holding_register", "input_register")
FC_TABLE: dict[int, RegisterTable] = {
    1: "coil", 5: "coil", 15: "coil", 2: "discrete_input", 3: "holding_register", 6: "holding_register",
    16: "holding_register", 4: "input_register",
}


@dataclass(frozen=True)
class RegisterMapSize:
    """How many points each table holds, starting at address 0."""

    coils: int = 16
    discrete_inputs: int = 16
    input_registers: int = 16
    holding_registers: int = 16

    def of(self, table: RegisterTable) -> int:
        return {
            "coil": self.coils, "discrete_input": self.discrete_inputs,
            "input_register": self.input_registers, "holding_register": self.holding_registers,
        }[table]


class RegisterMapServer:
    """A Modbus TCP server whose tables live in plain Python lists.

    Python reads and writes them directly (``get_bit``/``set_bit``/…); Modbus clients see
    the same values. Every coil written by a client is reported to the coil observers with
    the ``time.monotonic_ns()`` at which the server handled the request.
    """

    def __init__(
        self,
        size: RegisterMapSize,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unit_id: int = 1,
        read_only_coils: Iterable[int] = (),
        on_coil_write: CoilObserver | None = None,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._bound_port: int | None = None
        self._unit = unit_id
        self._size = size
        self._bits: dict[RegisterTable, list[bool]] = {t: [False] * _round16(size.of(t)) for t in BIT_TABLES}
        self._registers: dict[RegisterTable, list[int]] = {t: [0] * max(1, size.of(t)) for t in REGISTER_TABLES}
        self._read_only_coils = frozenset(read_only_coils)
        self._observers: list[CoilObserver] = [on_coil_write] if on_coil_write else []
        self._server: ModbusTcpServer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("register-map server not started")
        return self._bound_port

    async def start(self) -> int:
        """Listen; after a stop() the server comes back on the same port. Returns the port."""
        if self._server is not None:
            return self.port
        port = self._bound_port if self._bound_port is not None else self._requested_port
        server = ModbusTcpServer(self._sim_device(), address=(self._host, port))
        await server.serve_forever(background=True)
        self._server = server
        self._bound_port = server.transport.sockets[0].getsockname()[1]
        logger.debug("register-map server listening on %s:%d", self._host, self._bound_port)
        return self._bound_port

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        await server.shutdown()
        await asyncio.sleep(0)  # let the closed connections' callbacks run before returning

    def add_coil_observer(self, observer: CoilObserver) -> None:
        self._observers.append(observer)

    def remove_coil_observer(self, observer: CoilObserver) -> None:
        self._observers.remove(observer)

    def get_bit(self, table: RegisterTable, address: int) -> bool:
        return self._bits[table][address]

    def set_bit(self, table: RegisterTable, address: int, value: bool) -> None:
        self._bits[table][address] = bool(value)

    def get_register(self, table: RegisterTable, address: int) -> int:
        return self._registers[table][address]

    def set_register(self, table: RegisterTable, address: int, value: int) -> None:
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"register value {value} outside 0..65535")
        self._registers[table][address] = value

    def _sim_device(self) -> SimDevice:
        def bits(table: RegisterTable) -> list[SimData]:
            return [SimData(0, count=len(self._bits[table]), values=False, datatype=DataType.BITS)]

        def registers(table: RegisterTable) -> list[SimData]:
            return [SimData(0, count=len(self._registers[table]), values=0, datatype=DataType.REGISTERS)]

        # tuple order is pymodbus': (coils, discrete inputs, holding registers, input registers)
        simdata = (bits("coil"), bits("discrete_input"), registers("holding_register"), registers("input_register"))
        return SimDevice(self._unit, simdata=simdata, action=self._on_request)

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this before serving each request; our lists are the truth."""
        table = FC_TABLE.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if set_values is not None:
            return self._apply_write(table, address, list(set_values))
        if table in BIT_TABLES:
            model = self._bits[table]
            for index in range(address // 16 - start_address, address // 16 - start_address + count):
                first_bit = (start_address + index) * 16
                registers[index] = _pack16(model[first_bit:first_bit + 16])
        else:
            model_registers = self._registers[table]
            offset = address - start_address
            registers[offset:offset + count] = model_registers[address:address + count]
        return None

    def _apply_write(self, table: RegisterTable, address: int, values: list[Any]) -> ExcCodes | None:
        stamp = time.monotonic_ns()
        if table == "coil":
            touched = range(address, address + len(values))
            if self._read_only_coils.intersection(touched) or touched.stop > len(self._bits["coil"]):
                return ExcCodes.ILLEGAL_ADDRESS
            for offset, value in enumerate(values):
                self._bits["coil"][address + offset] = bool(value)
            for offset, value in enumerate(values):
                self._notify(address + offset, bool(value), stamp)
            return None
        if address + len(values) > len(self._registers[table]):
            return ExcCodes.ILLEGAL_ADDRESS
        self._registers[table][address:address + len(values)] = [int(v) for v in values]
        return None

    def _notify(self, address: int, value: bool, stamp: int) -> None:
        for observer in list(self._observers):
            try:
                observer(address, value, stamp)
            except Exception:  # an observer bug must not take the fake module down
                logger.exception("coil observer failed for coil 0x%04X", address)


async def serve_register_map(
    size: RegisterMapSize,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    unit_id: int = 1,
    read_only_coils: Iterable[int] = (),
    on_coil_write: CoilObserver | None = None,
) -> RegisterMapServer:
    """Start a :class:`RegisterMapServer`; stop it with ``await server.stop()``."""
    server = RegisterMapServer(
        size, host=host, port=port, unit_id=unit_id, read_only_coils=read_only_coils, on_coil_write=on_coil_write
    )
    await server.start()
    return server


def _round16(count: int) -> int:
    return max(16, (count + 15) // 16 * 16)


def _pack16(bits: list[bool]) -> int:
    word = 0
    for position, bit in enumerate(bits):
        if bit:
            word |= 1 << position
    return word
