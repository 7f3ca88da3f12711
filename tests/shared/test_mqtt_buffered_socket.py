"""The MQTT link's socket wrapper: one recv serves many small reads, writes leave together."""

from __future__ import annotations

import socket

import pytest

from openshelf.mqtt_socket import BufferedSocket as _BufferedSocket


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield _BufferedSocket(ours), theirs
    ours.close()
    theirs.close()


def test_small_reads_come_from_one_receive_and_pending_says_so(pair):
    wrapped, peer = pair
    peer.sendall(b"\x30\x05hello\x40\x02")
    assert wrapped.recv(1) == b"\x30"
    assert wrapped.pending() == 8  # the rest was fetched in the same receive
    assert wrapped.recv(1) == b"\x05"
    assert wrapped.recv(5) == b"hello"
    assert wrapped.recv(10) == b"\x40\x02"  # never more than what is buffered
    assert wrapped.pending() == 0
    with pytest.raises(BlockingIOError):
        wrapped.recv(1)


def test_a_closed_peer_still_reads_as_empty(pair):
    wrapped, peer = pair
    peer.close()
    assert wrapped.recv(1) == b""


def test_writes_wait_for_flush_and_leave_in_one_piece(pair):
    wrapped, peer = pair
    assert wrapped.send(b"\x40\x02\x00\x01") == 4
    assert wrapped.send(bytearray(b"\x40\x02\x00\x02")) == 4
    assert wrapped.outgoing() == 8
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)
    wrapped.flush()
    assert wrapped.outgoing() == 0
    assert peer.recv(100) == b"\x40\x02\x00\x01\x40\x02\x00\x02"


def test_close_sends_what_is_still_buffered(pair):
    wrapped, peer = pair
    wrapped.send(b"\xe0\x00")  # DISCONNECT: paho closes right after writing it
    wrapped.close()
    assert peer.recv(10) == b"\xe0\x00"


def test_everything_else_is_the_socket_s_own(pair):
    wrapped, _ = pair
    assert wrapped.fileno() > 0
    assert wrapped.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
