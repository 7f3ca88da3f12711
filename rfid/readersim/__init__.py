"""FEIG ISO Host reader simulator: virtual tags, a pure reader core, pty and TCP transports."""

from rfid.readersim.core import ReaderSession, SimulatedReader, SimulatorStats
from rfid.readersim.pty_transport import PtyTransport
from rfid.readersim.tags import VirtualTag, nxp_uid
from rfid.readersim.tcp_transport import TcpTransport

__all__ = [
    "PtyTransport",
    "ReaderSession",
    "SimulatedReader",
    "SimulatorStats",
    "TcpTransport",
    "VirtualTag",
    "nxp_uid",
]
